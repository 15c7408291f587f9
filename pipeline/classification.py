"""Classification runs: build the model a run describes, train it, evaluate it, cost it.

A run trains the same way in one process or in each of several (``dist``): the loaders give
each process its shard of ``loader.batch_size / world`` images per step.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from pipeline.checkpoint import load_backbone
from pipeline.config import Run
from pipeline.device import Accel, as_accel
from pipeline.distributed import SINGLE, Dist, per_process_batch
from pipeline.loaders import LoaderSpec, build_loader, resolve_kind
from pipeline.models import build_model
from pipeline.models.cost import (MACS_TOOL, count_conv_weights, count_macs,
                                  count_trainable_params)
from pipeline.resume import ResumeState
from pipeline.train import Recipe, evaluate_split, fit

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a finished run produced."""

    model: nn.Module
    history: list[dict[str, float]]
    metrics: dict[str, Any]


def recipe_for(run: Run, sgd: dict[str, Any]) -> Recipe:
    """The run's optimisation recipe: its lr and epochs plus params.yaml's ``train.sgd``."""
    return Recipe(epochs=run.epochs, lr=run.lr, **sgd)


def loader_spec(run: Run, loader: dict[str, Any], *, train: bool, seed: int,
                dist: Dist = SINGLE) -> LoaderSpec:
    """Decode/resize settings of one split for this run (same implementation for both), for
    this process's shard: ``loader.batch_size`` is the global batch."""
    interpolation = "bilinear" if run.resizer == "learned" else run.resizer
    return LoaderSpec(size=run.input_size,
                      batch_size=per_process_batch(loader["batch_size"], dist.world),
                      workers=loader["workers"], train=train, scale=tuple(loader["train_scale"]),
                      crop=loader["eval_crop"], interpolation=interpolation, seed=seed,
                      shard=(dist.rank, dist.world))


def cost_of(model: nn.Module, run: Run) -> dict[str, Any]:
    """Parameters and GMACs of the whole model and of its resizer, at the run's input size."""
    return {"params": count_trainable_params(model),
            "resizer_params": count_trainable_params(model.resizer),
            "resizer_conv_weights": count_conv_weights(model.resizer),
            "gmacs": round(count_macs(model, run.input_size) / 1e9, 6),
            "resizer_gmacs": round(count_macs(model.resizer, run.input_size) / 1e9, 6),
            "macs_tool": MACS_TOOL}


def train_run(run: Run, params: dict[str, Any], manifests: dict[str, pd.DataFrame],
              num_classes: int, init: dict[str, Any] | None, device: torch.device | Accel,
              resume: ResumeState | None = None, dist: Dist = SINGLE) -> RunResult:
    """Train and evaluate one run; ``init`` is the checkpoint the backbone starts from,
    ``resume`` where the per-epoch training state is kept and ``dist`` this process's place
    among the data-parallel ones. Every process returns the same model and metrics."""
    accel = as_accel(device)
    torch.manual_seed(params["seed"])
    model = build_model(run.backbone, run.resizer, run.model_size, num_classes,
                        r=params["r"], n=params["n"])
    if init is not None:
        load_backbone(model, init, backbone=run.backbone, num_classes=num_classes,
                      source=f"checkpoint of {run.backbone}-{run.init}")
    accel.prepare(model)
    loader_cfg, seed = params["loader"], params["seed"]
    val_loader = build_loader(loader_cfg["kind"], manifests["val"],
                              loader_spec(run, loader_cfg, train=False, seed=seed, dist=dist))

    def train_loader(epoch: int):
        spec = loader_spec(run, loader_cfg, train=True, seed=seed * 100_003 + epoch, dist=dist)
        return build_loader(loader_cfg["kind"], manifests["train"], spec)

    log.info("run %s: %s resizer, %d px -> %d px, %d epochs from %s", run.name, run.resizer,
             run.input_size, run.model_size, run.epochs, run.init or "scratch")
    history = fit(model, train_loader, val_loader, recipe_for(run, params["train"]["sgd"]), accel,
                  resume, dist)
    final = evaluate_split(model, val_loader, accel, dist)
    metrics = {**asdict(run), "top1_err": round(final["top1_err"], 4),
               "top5_err": round(final["top5_err"], 4), "val_loss": round(final["loss"], 6),
               "val_images": final["images"], **cost_of(model, run),
               # how it was computed (resources, not params: reruns elsewhere may differ)
               "device": accel.device.type, "processes": dist.world,
               "precision": accel.precision, "loader": resolve_kind(params["loader"]["kind"])}
    if run.resizer == "learned":
        metrics.update(r=params["r"], n=params["n"])
    return RunResult(model, history, metrics)
