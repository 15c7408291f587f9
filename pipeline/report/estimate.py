"""The bill before the run: images, epochs, GPU-hours and disk of the configured DAG.

Every training run of the plan (:func:`pipeline.params.runs.all_runs`) costs its epochs times its
train split, plus one pass over its evaluation split per epoch (the loop evaluates after every
epoch). Its speed is an anchor's, scaled by the ratio of multiply-accumulates per image
(:func:`pipeline.models.cost.count_macs` of the run's resizer + backbone at its input size
against the anchor model's): the training rate of ResNet-50 at 224 px measured by
``workflow/scripts/gpu_check.sh`` when ``results/bench/gpu_check/gpu_check.json`` has it, else a
published rate (stated below). Scaling by MACs is optimistic for depthwise models (MobileNets,
EfficientNets run well below their MACs' share of a GPU) and ignores decoding: a floor on the
bill, never a quote. Each line says where its numbers come from.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.params.runs import Run

#: The anchor model and size the rates refer to.
ANCHOR_BACKBONE, ANCHOR_SIZE = "resnet50", 224
#: A published training rate of the anchor: ResNet-50 v1.5, 224 px, one A100 80GB, mixed
#: precision (NVIDIA DeepLearningExamples, PyTorch ConvNets README), images per second.
PUBLISHED_RATE = 2470.0
PUBLISHED_SOURCE = ("published: ResNet-50 v1.5 at 224 px trains at ~2,470 images/s on one "
                    "A100 80GB with AMP (NVIDIA DeepLearningExamples)")
#: Evaluation (forward only) against training (forward, backward, update), per image.
EVAL_SPEEDUP = 3.0
GPU_CHECK = Path("results/bench/gpu_check/gpu_check.json")
#: The official archives' sizes in bytes (ILSVRC2012: train, val, devkit).
IMAGENET_ARCHIVE_BYTES = {"ILSVRC2012_img_train.tar": 147_897_477_120,
                          "ILSVRC2012_img_val.tar": 6_744_924_160,
                          "ILSVRC2012_devkit_t12.tar.gz": 2_568_145}
#: Real AVA's images and its official generic test list.
AVA_IMAGES, AVA_TEST = 255_530, 19_930
BYTES_PER_WEIGHT = 4  # checkpoints hold float32 weights


@dataclass(frozen=True)
class Anchor:
    """Training images per second of the anchor model and where that number comes from."""

    images_per_s: float
    source: str


@dataclass(frozen=True)
class Split:
    """Images per epoch of a task's train and evaluation splits, and their source."""

    train: int
    eval: int
    source: str


@dataclass(frozen=True)
class RunCost:
    """What one run processes and how long it takes at the anchor's scaled rate."""

    run: Run
    images: int
    gpu_hours: float
    checkpoint_bytes: int


def anchor(gpu_check: Path = GPU_CHECK) -> Anchor:
    """The measured anchor when the GPU check recorded its training rate, else the published."""
    if gpu_check.is_file():
        report = json.loads(gpu_check.read_text())
        train = report.get("checks", {}).get("train", {})
        rate = train.get("result", {}).get("bf16_cl_images_per_s")
        if train.get("status") == "ok" and rate:
            return Anchor(float(rate), f"measured: {gpu_check} ({report.get('device', '?')}, "
                                       f"{report.get('date', '?')}), ResNet-50 at 224 px, bf16")
    return Anchor(PUBLISHED_RATE, PUBLISHED_SOURCE)


def splits(params: Mapping[str, Any], synthetic: Mapping[str, bool]) -> dict[str, Split]:
    """Images per epoch per task: the embedded sets' from params, real data's official counts."""
    from pipeline.data.archives import OFFICIAL

    net, ava = params["synthetic"]["imagenet"], params["synthetic"]["ava"]
    embedded = Split(net["classes"] * net["train_per_class"],
                     net["classes"] * net["val_per_class"], "params: synthetic.imagenet")
    out = {"classification": embedded if synthetic["classification"] else
           Split(OFFICIAL["train"], OFFICIAL["val"], "stated: ILSVRC2012's official counts"),
           "attenuated": dataclasses.replace(
               embedded, source=f"{embedded.source} (the second regime's set)")}
    if synthetic["iqa"]:
        out["iqa"] = Split(ava["train_images"], ava["test_images"], "params: synthetic.ava")
    else:
        out["iqa"] = Split(AVA_IMAGES - AVA_TEST, AVA_TEST, "stated: AVA's generic split")
    return out


def run_cost(run: Run, split: Split, rate: float, weights: int) -> RunCost:
    """Images and GPU-hours of one run at ``rate`` training images/s: each epoch trains and
    evaluates, then the final evaluation (all a run of 0 epochs does)."""
    evaluations = run.epochs + 1
    images = run.epochs * split.train + evaluations * split.eval
    seconds = (run.epochs * split.train + evaluations * split.eval / EVAL_SPEEDUP) / rate
    return RunCost(run, images, seconds / 3600, weights * BYTES_PER_WEIGHT)


def run_costs(runs: Iterable[Run], task_splits: Mapping[str, Split], base: Anchor,
              measure: Callable[[Run], tuple[int, int]], anchor_macs: int) -> list[RunCost]:
    """Every run's cost; ``measure(run)`` = (MACs per image, trainable weights)."""
    costs = []
    for run in runs:
        macs, weights = measure(run)
        rate = base.images_per_s * anchor_macs / macs
        costs.append(run_cost(run, task_splits[run.task], rate, weights))
    return costs


def family_rows(costs: Iterable[RunCost]) -> list[dict[str, Any]]:
    """Per (task, family): runs, epochs, images, GPU-hours; then the total."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for cost in costs:
        key = (cost.run.task, cost.run.family)
        row = rows.setdefault(key, {"task": key[0], "family": key[1], "runs": 0, "epochs": 0,
                                    "images": 0, "gpu_hours": 0.0})
        row["runs"] += 1
        row["epochs"] += cost.run.epochs
        row["images"] += cost.images
        row["gpu_hours"] += cost.gpu_hours
    table = list(rows.values())
    table.append({"task": "all", "family": "total", **{
        key: sum(r[key] for r in table) for key in ("runs", "epochs", "images", "gpu_hours")}})
    return table


def folder_bytes(root: Path) -> int:
    """Bytes of the regular files under ``root`` (links not followed)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def imagenet_rows(net: Mapping[str, Any]) -> list[dict[str, Any]]:
    """ImageNet's disk: the archives (measured when all are in ``root``, else the official
    sizes) and, unless ``root`` is an extracted tree, the copy extracted from them."""
    root = Path(net["root"])
    present = [root / name for name in IMAGENET_ARCHIVE_BYTES if (root / name).is_file()]
    if (root / "train").is_dir() and (root / "val").is_dir() and net["layout"] != "archives":
        return [{"what": f"ImageNet tree in {root}", "bytes": None,
                 "source": "in place (about the train and val archives' size); nothing copied"}]
    if len(present) == len(IMAGENET_ARCHIVE_BYTES):
        size, source = sum(p.stat().st_size for p in present), f"measured: {root}"
    else:
        size, source = sum(IMAGENET_ARCHIVE_BYTES.values()), "stated: the official archives"
    devkit = IMAGENET_ARCHIVE_BYTES["ILSVRC2012_devkit_t12.tar.gz"]
    return [{"what": "ImageNet archives", "bytes": size, "source": source},
            {"what": f"ImageNet extracted to {net['extract_to']}", "bytes": size - devkit,
             "source": "about the train and val archives' size (they store the JPEGs as "
                       "they are)"}]


def disk_rows(params: Mapping[str, Any], synthetic: Mapping[str, bool],
              costs: Iterable[RunCost]) -> list[dict[str, Any]]:
    """Disk: ImageNet's archives and extracted copy, AVA, and the checkpoints, with sources."""
    rows = []
    if not synthetic["classification"]:
        rows += imagenet_rows(params["data"]["imagenet"])
    if not synthetic["iqa"]:
        images = Path(params["data"]["ava"]["root"]) / "images"
        if images.is_dir():
            rows.append({"what": "AVA images", "bytes": folder_bytes(images),
                         "source": f"measured: {images}"})
        else:
            rows.append({"what": "AVA images", "bytes": None,
                         "source": f"unknown until {images} exists"})
    rows.append({"what": "checkpoints (one per run, float32 weights)",
                 "bytes": sum(c.checkpoint_bytes for c in costs),
                 "source": "the runs' trainable weights x 4 bytes"})
    return rows
