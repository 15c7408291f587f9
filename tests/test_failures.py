"""Clear failures: each stops the stage with exit status 2 and one message that says what to do
(no traceback): a GPU asked for but absent, a bad device setting, a dataset path missing, a
run or seed params.yaml does not configure, ``--init``/``--resizer-init`` given where the run
starts from nothing (or missing where it does not), a checkpoint that does not fit the run, a
full disk (before and while writing), and any of these inside one of several training
processes.

Stages run in this process through ``pipeline.cli.main`` (what ``python -m pipeline`` runs),
with GPU absence and full disks simulated by environment variables and monkeypatching.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from pipeline import cli
from pipeline.core.errors import CheckpointError, DiskFullError
from pipeline.core.manifests import write_manifests
from pipeline.training import distributed
from pipeline.training.device import GPU_COUNT_VARS, GPU_LIST_VARS
from tests.conftest import resizer_spec

ENV = ("PIPELINE_REQUIRE_GPU", "PIPELINE_PRECISION", "PIPELINE_NPROC", "PIPELINE_DETERMINISTIC",
       "LOCAL_RANK", "RANK", "WORLD_SIZE", *GPU_LIST_VARS, *GPU_COUNT_VARS)


@pytest.fixture
def project(tmp_path, tiny_params, monkeypatch) -> Path:
    """A directory with the tiny params.yaml and hand-written manifests (4 classes; the
    failures below happen before any image is decoded), no GPU and no device settings."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    wnids = [f"n{i:08d}" for i in range(4)]
    rows = pd.DataFrame({"path": [f"img{i}.jpg" for i in range(16)],
                         "label": [i % 4 for i in range(16)],
                         "wnid": [wnids[i % 4] for i in range(16)], "width": 48, "height": 48})
    write_manifests(manifests, {"train": rows, "val": rows,
                                "classes": pd.DataFrame({"wnid": wnids})})
    for path in rows["path"]:  # there (training checks), but never read
        Path(path).write_bytes(b"not read")
    return tmp_path


@pytest.fixture(autouse=True)
def _restore_logging(restore_logging):
    """Every test here runs cli.main (conftest.restore_logging)."""


def stage(*argv: str) -> tuple[int, str]:
    """Run one stage; its exit status and its log."""
    status = cli.main([*argv, "--log-file", "stage.log"])
    return status, Path("stage.log").read_text()


def train(mode: str = "default", *extra: str) -> tuple[int, str]:
    return stage("train", "--task", "classification", "--backbone", "resnet_tiny", "--mode", mode,
                 "--seed", "0", "--manifests", "manifests", "--out", "runs/x",
                 "--metrics", "metrics/x.json", "--live", "live/x.csv", *extra)


def assert_clean_error(status: int, log: str, *phrases: str) -> None:
    assert status == 2, log
    assert "Traceback" not in log
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1, log
    for phrase in phrases:
        assert phrase in log, f"{phrase!r} not in:\n{log}"


@pytest.mark.parametrize("name, value", [("PIPELINE_REQUIRE_GPU", "1"),
                                         ("CUDA_VISIBLE_DEVICES", "0"),
                                         ("SLURM_JOB_GPUS", "0,1"),
                                         ("SLURM_GPUS_ON_NODE", "2")])
def test_gpu_asked_for_but_absent(project, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert_clean_error(*train(), f"a GPU was asked for ({name}={value})", "none is usable",
                       f"unset {name} to train on the CPU")


@pytest.mark.parametrize("name, value, phrase", [
    ("PIPELINE_PRECISION", "fp8", "allowed: auto, fp32, bf16, fp16"),
    ("PIPELINE_NPROC", "two", "set a positive integer or unset it"),
    ("PIPELINE_NPROC", "3", "loader.batch_size = 8 is the global batch, split over 3 processes"),
])
def test_bad_device_settings(project, monkeypatch, name, value, phrase):
    monkeypatch.setenv(name, value)
    assert_clean_error(*train(), phrase)


def test_dataset_path_missing(project):
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["data"]["imagenet"]["root"] = "/no/such/imagenet"
    Path("params.yaml").write_text(yaml.safe_dump(params))
    assert_clean_error(*stage("prepare-imagenet", "--out", "prepared", "--report", "report.csv",
                              "--summary", "summary.json"),
                       "data.imagenet.root = '/no/such/imagenet' does not exist", "point it at",
                       "or set it to 'data/synthetic/imagenet'")


def test_checkpoint_that_does_not_fit_the_run(project):
    from pipeline.models import build_model
    from pipeline.training.checkpoint import save_checkpoint
    save_checkpoint("other.pt", build_model("resnet_tiny", resizer_spec("bilinear", 16), 10),
                    {"backbone": "resnet_tiny", "num_classes": 10})
    assert_clean_error(*train("learned", "--init", "other.pt"),
                       "holds backbone 'resnet_tiny' with 10 outputs",
                       "needs 'resnet_tiny' with 4;", "rerun the run it starts from")


@pytest.mark.parametrize("mode, extra, phrases", [
    ("learned", (), ("starts from classification/resnet_tiny/default: pass --init",)),
    ("default", ("--init", "other.pt"), ("starts from nothing: do not pass --init",)),
    ("learned", ("--init", "other.pt", "--resizer-init", "other.pt"),
     ("starts from nothing: do not pass --resizer-init",)),
])
def test_init_flags_that_do_not_fit_the_run(project, mode, extra, phrases):
    assert_clean_error(*train(mode, *extra), *phrases)


def test_seed_or_mode_not_configured(project):
    status, log = stage("train", "--task", "classification", "--backbone", "resnet_tiny",
                        "--mode", "default", "--seed", "7", "--manifests", "manifests",
                        "--out", "runs/x", "--metrics", "metrics/x.json", "--live", "live/x.csv")
    assert_clean_error(status, log, "no run classification/resnet_tiny/default with seed 7",
                       "(seeds: [0])", "classification/resnet_tiny/learned")
    assert_clean_error(*train("bicubic_hr"), "no run classification/resnet_tiny/bicubic_hr")


def test_init_checkpoint_missing(project):
    assert_clean_error(*train("learned", "--init", "missing.pt"),
                       "missing.pt: checkpoint not found", "run the stage that writes it first")


def test_full_disk_is_found_before_training(project, monkeypatch):
    import pipeline.core.io
    monkeypatch.setattr(pipeline.core.io, "free_bytes", lambda path: 5 << 20)
    status, log = train()
    assert_clean_error(status, log, "runs/x: the run's resume state and checkpoint needs about",
                       "only 5.0 MiB is free there", "free space on the filesystem of runs/x")
    assert not Path("runs/x/resume.pt").exists()


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_while_writing_a_table(project, monkeypatch):
    monkeypatch.setattr("pipeline.report.tables.write_csv", enospc)
    assert_clean_error(*stage("resizer-params", "--out", "tables/resizer_params"),
                       "no space left while writing tables/resizer_params",
                       "No space left on device", "free there now:", "then rerun the stage")


def test_full_disk_while_writing_the_checkpoint(project, monkeypatch):
    from pipeline.models import build_model
    from pipeline.training.runner import RunResult

    def trained(*args, **kwargs):
        return RunResult(build_model("resnet_tiny", resizer_spec("bilinear", 16), 4),
                         [{"epoch": 1}], {"top1_err": 50.0, "top5_err": 0.0, "gmacs": 0.001})

    monkeypatch.setattr("pipeline.stages.train.train_run", trained)
    monkeypatch.setattr("pipeline.stages.train.save_checkpoint", enospc)
    assert_clean_error(*train(), "no space left while writing runs/x/model.pt",
                       "a training stage resumes from its last finished epoch")
    assert not Path("metrics/x.json").exists()


def fail_in_worker() -> None:
    """Rank 0 finds its disk full, rank 1 a checkpoint that does not fit (run by the launcher)."""
    import os
    if os.environ["RANK"] == "0":
        raise OSError(errno.ENOSPC, "No space left on device")
    raise CheckpointError("the checkpoint does not fit; rerun its baseline")


def test_error_in_a_training_process_reaches_the_launcher(monkeypatch):
    """What the stage does with N processes: the lowest rank's error, as its own type."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    with pytest.raises(DiskFullError, match="no space left while writing"):
        distributed.launch(fail_in_worker, (), 2)
