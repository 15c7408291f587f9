"""Loop benchmark (stage ``bench-loop``): the project's training epoch and evaluation beside a
bare PyTorch loop on the same model, batch size and threads, with the data preloaded.

The bare loop is the limit a training loop can reach on this machine: batches already decoded,
resized and normalised in memory, then ``zero_grad``, forward, loss, backward, ``step``. The
project's loop does what a run does: its loader (the decoded-once images where the run has
them), normalisation, the gradient norms it records and the clipping it applies. Their ratio
(images/s, measured side by side, passes interleaved, the fastest of each kept) is how close
the loop is to its limit; CPU milliseconds per image show where the rest goes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from pipeline.cli import cpu_seconds
from pipeline.core.manifests import read_manifest
from pipeline.loaders import build_loader, loader_name, normalize
from pipeline.loaders.decoded import read_decoded
from pipeline.params.runs import get_run
from pipeline.training.device import as_accel
from pipeline.training.evaluate import evaluate_split
from pipeline.training.loop import make_optimizer, train_one_epoch
from pipeline.training.model import loader_spec, new_model
from pipeline.training.runner import recipe_for

log = logging.getLogger(__name__)
ACCEL = as_accel(torch.device("cpu"))


def timed_pass(work: Callable[[], int]) -> tuple[float, float, int]:
    """(wall s, CPU s, images) of one call of ``work`` (which returns its image count)."""
    cpu, start = cpu_seconds(), time.perf_counter()
    images = work()
    return time.perf_counter() - start, cpu_seconds() - cpu, images


def best(passes: list[tuple[float, float, int]]) -> dict[str, float]:
    """The fastest pass as images/s and CPU ms per image."""
    wall, cpu, images = min(passes, key=lambda p: p[0] / p[2])
    return {"images_per_s": images / wall, "cpu_ms_per_image": 1000 * cpu / images,
            "images": images}


def first_batches(loader: Iterable, count: int) -> Iterable:
    """The loader's first ``count`` batches (the whole loader when it has fewer)."""
    for k, batch in enumerate(loader):
        if k >= count:
            return
        yield batch


def bare_train(model: nn.Module, batches: list, optimizer: torch.optim.Optimizer,
               criterion: nn.Module) -> int:
    """One pass of the bare loop over preloaded float batches; its image count."""
    model.train()
    for images, targets in batches:
        optimizer.zero_grad(set_to_none=True)
        criterion(model(images), targets).backward()
        optimizer.step()
    return sum(len(t) for _, t in batches)


@torch.no_grad()
def bare_eval(model: nn.Module, batches: list) -> int:
    """One pass of bare inference over preloaded float batches; its image count."""
    model.eval()
    for images, _ in batches:
        model(images)
    return sum(len(t) for _, t in batches)


def measure_run(params: dict[str, Any], manifests: Path, name: str, batches: int,
                repeats: int) -> list[dict[str, Any]]:
    """Train and eval rows (project vs bare) of run ``backbone/mode`` of classification: the
    first ``batches`` training batches per pass, the whole test split per evaluation."""
    backbone, mode = name.split("/")
    run = get_run(params, "classification", backbone, mode, params["seeds"][0])
    frames = {s: read_manifest(manifests, s) for s in ("train", "val")}
    decoded = {s: read_decoded(manifests, s, f) for s, f in frames.items()}
    classes = len(read_manifest(manifests, "classes"))
    model, cfg = ACCEL.prepare(new_model(run, classes)), params["loader"]
    recipe = recipe_for(run, params["train"])
    optimizer = make_optimizer(model, recipe)
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)

    def train_loader(seed: int) -> Iterable:
        spec = loader_spec(run, cfg, train=True, seed=seed)
        return first_batches(build_loader(cfg["kind"], frames["train"], spec,
                                          decoded["train"]), batches)

    # the whole test split, through one loader, as a run evaluates every epoch
    val_loader = build_loader(cfg["kind"], frames["val"],
                              loader_spec(run, cfg, train=False, seed=run.seed), decoded["val"])

    def project_train(rep: int) -> int:
        return train_one_epoch(model, train_loader(rep), criterion, optimizer, ACCEL,
                               grad_clip=recipe.grad_clip)["images"]

    def project_eval() -> int:
        return evaluate_split(model, val_loader, ACCEL)["images"]

    preloaded = {s: [(normalize(x).contiguous(memory_format=ACCEL.layout(x)), y)
                     for x, y in batches]
                 for s, batches in (("train", train_loader(1)), ("val", val_loader))}
    cases = {"train": (project_train,
                       lambda rep: bare_train(model, preloaded["train"], optimizer, criterion)),
             "eval": (lambda rep: project_eval(), lambda rep: bare_eval(model, preloaded["val"]))}
    rows = []
    for phase, (project, bare) in cases.items():
        project(0), bare(0)  # warm-up: allocator, kernels' first calls
        found: dict[str, list] = {"project": [], "bare": []}
        for rep in range(1, repeats + 1):  # interleaved: whatever else runs meets both alike
            found["project"].append(timed_pass(lambda: project(rep)))
            found["bare"].append(timed_pass(lambda: bare(rep)))
        ours, limit = best(found["project"]), best(found["bare"])
        rows.append({"run": name, "input_size": run.input_size, "model_size": run.model_size,
                     "phase": phase, "images": ours["images"],
                     "images_per_s": round(ours["images_per_s"], 1),
                     "bare_images_per_s": round(limit["images_per_s"], 1),
                     "vs_bare": round(ours["images_per_s"] / limit["images_per_s"], 3),
                     "cpu_ms_per_image": round(ours["cpu_ms_per_image"], 3),
                     "bare_cpu_ms_per_image": round(limit["cpu_ms_per_image"], 3),
                     "loader": loader_name(cfg["kind"], decoded["train" if phase == "train"
                                                               else "val"]),
                     "threads": torch.get_num_threads(),
                     "load_1min": round(os.getloadavg()[0], 2)})
        log.info("%s %s: %.0f images/s, bare loop %.0f (%.2f of it); CPU %.2f vs %.2f ms/image",
                 name, phase, rows[-1]["images_per_s"], rows[-1]["bare_images_per_s"],
                 rows[-1]["vs_bare"], rows[-1]["cpu_ms_per_image"],
                 rows[-1]["bare_cpu_ms_per_image"])
    return rows


def run_loop_bench(params: dict[str, Any], manifests: Path) -> pd.DataFrame:
    """Every run of ``bench.loop.runs``, on ``train.cpu_threads`` intra-op threads."""
    cfg = params["bench"]["loop"]
    torch.set_num_threads(params["train"]["cpu_threads"])
    rows = [row for name in cfg["runs"]
            for row in measure_run(params, manifests, name, cfg["batches"], cfg["repeats"])]
    return pd.DataFrame(rows)
