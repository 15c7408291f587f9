"""Shared fixtures: the repository's params, tiny overlays and small generated datasets."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``overlay`` layered over ``base`` (dicts merged key by key, everything else replaced)."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


#: A configuration small enough to run the whole DAG in a few minutes on two cores: one seed,
#: one backbone, every family except transfer (tests/test_training.py trains a transfer pair).
TINY = {
    "seeds": [0],
    # the fine band sits between the tiny model size's Nyquist (16 px: 9 cycles) and the input
    # size's (32 px: 18 cycles), the IQA set's detail too; the probes' gates are tested on their
    # own (tests/test_probe.py, tests/test_probe_ava.py)
    "synthetic": {"imagenet": {"classes": 4, "train_per_class": 12, "val_per_class": 6,
                               "min_side": 40, "max_side": 56, "fine_cycles": [13, 16],
                               "nuisance_cycles": [3, 8]},
                  "ava": {"train_images": 16, "test_images": 8, "min_side": 48, "max_side": 64,
                          "detail_cycles": [13, 16]},
                  # the second regime's band just below 16 px's Nyquist
                  "attenuated": {"fine_cycles": [7, 8.5], "nuisance_cycles": [9.5, 13]}},
    "probe": {"max_images": 48, "max_model_error_share": 0.0, "max_input_error": 1.0,
              "max_model_srcc": 1.0, "min_input_srcc": -1.0,
              "attenuated": {"max_model_error_share": 1.0, "min_model_loss": 0.0}},
    "loader": {"workers": 0, "batch_size": 8},
    # one thread a run: local Snakemake (--cores 2) and the one-node SLURM cluster then run
    # two training jobs side by side
    "train": {"cpu_threads": 1, "scratch": {"epochs": 1}, "finetune": {"epochs": 1},
              "iqa": {"epochs": 1}},
    "classification": {"backbones": ["resnet_tiny"], "model_size": 16,
                       "baselines": {"default": {"resizer": "bilinear", "input_size": 16},
                                     "bilinear_hr": {"resizer": "bilinear", "input_size": 32},
                                     "bilinear_noaa": {"resizer": "bilinear_noaa",
                                                       "input_size": 32, "model_size": 16},
                                     "band_energy": {"resizer": "band_energy", "input_size": 32,
                                                     "model_size": 16}},
                       "fixed": {"bilinear_continued": {"resizer": "bilinear", "input_size": 16}},
                       "learned": {"learned": {"input_size": 32},
                                   "muller": {"input_size": 32, "kind": "muller"}},
                       "joint": {"learned_scratch": {"input_size": 32, "epochs": 1}},
                       "warm": {"from": "band_energy", "backbones": ["resnet_tiny"], "epochs": 1,
                                "modes": {"learned_warm": {"input_size": 32},
                                          "band_energy_continued": {
                                              "resizer": "band_energy", "input_size": 32,
                                              "model_size": 16}}}},
    "iqa": {"backbones": ["resnet_tiny"], "model_size": 16,
            "baselines": {"default": {"resizer": "bicubic", "input_size": 16}},
            "fixed": {}, "learned": {"learned": {"input_size": 32}}},
    "attenuated": {"backbones": ["resnet_tiny"], "model_size": 16,
                   "baselines": {"default": {"resizer": "bilinear", "input_size": 16},
                                 "bilinear_hr": {"resizer": "bilinear", "input_size": 32}},
                   "fixed": {"bilinear_continued": {"resizer": "bilinear", "input_size": 16}},
                   "learned": {"learned": {"input_size": 32}}},
    "transfer": {"input_size": 32, "epochs": 1, "classification": [], "iqa": []},
    "ablation": {"seeds": [0], "input_size": 32, "r": [1], "n": [4],
                 "classification": ["resnet_tiny"], "iqa": []},
    "figures": {"examples": 2, "seed": 0},
    "resizer_params": {"r": [1, 2], "n": [4], "input_size": 32, "output_size": 16},
    "bench": {"images": 16, "batch_size": 8, "repeats": 1, "sizes": {"synthetic": [32],
                                                                      "photo": [64]},
              "photo": {"long_side": 96, "short_side": [64, 96]},
              "loop": {"runs": ["resnet_tiny/default", "resnet_tiny/learned"], "batches": 2,
                       "repeats": 1}},
}


@pytest.fixture
def restore_logging():
    """cli.main reconfigures the root logger; put pytest's handlers back afterwards."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:], root.level = handlers, level


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A manifest of photo-like JPEGs of assorted shapes, one stored sideways with an EXIF
    orientation tag (tests.test_loaders.write_photos)."""
    from tests.test_loaders import write_photos

    return write_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A manifest of ten small JPEGs (label = row)."""
    import pandas as pd

    from tests.test_loaders import write_images

    shapes = [(40 + 3 * i, 56 - 2 * i) for i in range(10)]
    paths = write_images(tmp_path_factory.mktemp("small"), shapes, seed=4)
    return pd.DataFrame({"path": paths, "label": range(len(paths))})


def make_recipe(**fields: Any):
    """A training Recipe with params.yaml's optimisation settings (``train.sgd``, no warm-up,
    no clipping, no resizer knobs), ``fields`` overridden."""
    from pipeline.training.loop import Recipe

    sgd = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]["sgd"]
    base = dict(epochs=1, lr=1.0, **sgd, warmup_epochs=0, grad_clip=None, resizer_lr_mult=1.0,
                resizer_weight_decay=None)
    return Recipe(**{**base, **fields})


#: A learned resizer's knobs for model tests (a Run's ``knobs``): no zero init, unbounded.
KNOBS_OFF = (("bound", None), ("zero_init", False))


def resizer_spec(name: str, size: int, r: int | None = None, n: int | None = None,
                 **knobs: Any):
    """A ResizerSpec for model tests: a learned one (``r`` and ``n`` given) with
    :data:`KNOBS_OFF` unless ``knobs`` say otherwise; a fixed one otherwise."""
    from pipeline.params.runs import ResizerSpec

    if r is None:
        return ResizerSpec(name, size)
    return ResizerSpec(name, size, r, n, tuple(sorted({**dict(KNOBS_OFF), **knobs}.items())))


@pytest.fixture
def params() -> dict[str, Any]:
    """The repository's params.yaml as a dict (a fresh copy per test)."""
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def tiny_params(params) -> dict[str, Any]:
    """params.yaml with the TINY overlay."""
    return deep_merge(params, TINY)


@pytest.fixture(scope="session")
def tiny() -> dict[str, Any]:
    """params.yaml with the TINY overlay, for the whole-DAG tests."""
    return deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)


@pytest.fixture(scope="session")
def snakemake_project(tmp_path_factory, worker_id, tiny) -> Path:
    """A copy of the repository with the tiny params, built by local Snakemake (2 cores): the
    reference the DVC run (tests/test_e2e.py) and the SLURM run (tests/test_slurm.py) are
    compared with byte for byte. Built once per test session, also when pytest-xdist runs
    those two modules in different workers."""
    from tests.projects import project_copy, sh

    def build(dest: Path) -> None:
        project_copy(dest, tiny)
        sh(dest, "snakemake", "--cores", "2")

    return shared_once(tmp_path_factory, worker_id, "snakemake", build)


def shared_once(tmp_path_factory, worker_id: str, name: str,
                build: Callable[[Path], None]) -> Path:
    """Folder ``name``, filled by ``build(folder)`` once per test session: under pytest-xdist
    the first worker to ask builds it in the session's shared temporary folder while the
    others wait on a file lock; a failed build leaves no mark, so the next one tries again."""
    from filelock import FileLock

    if worker_id == "master":  # not under xdist
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    root = tmp_path_factory.getbasetemp().parent
    folder, done = root / name, root / f"{name}.built"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder
