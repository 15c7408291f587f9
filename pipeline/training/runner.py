"""One run of any task: build the model it describes, warm-start it, train, evaluate, cost it.

A run trains the same way in one process or in each of several (``dist``): the loaders give
each process its shard of ``loader.batch_size / world`` images per step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from pipeline.loaders import DecodedImages, build_loader, loader_name
from pipeline.models.cost import MACS_TOOL, count_conv_weights, count_macs, count_trainable_params
from pipeline.models.weights import load_published, overrides
from pipeline.params.runs import Run
from pipeline.training.checkpoint import load_backbone, load_resizer
from pipeline.training.device import Accel, as_accel
from pipeline.training.diagnostics import first_images, health, resizer_diagnostics
from pipeline.training.distributed import SINGLE, Dist
from pipeline.training.loop import UNTRAINED, Recipe, epoch_record, fit
from pipeline.training.model import loader_spec, new_model
from pipeline.training.resume import ResumeState
from pipeline.training.tasks import get_task

log = logging.getLogger(__name__)
#: Validation images the resizer diagnostics look at.
DIAGNOSTIC_IMAGES = 256


@dataclass
class RunResult:
    """What a finished run produced (``model``: the bare resizer + backbone)."""

    model: nn.Module
    history: list[dict[str, float]]
    metrics: dict[str, Any]


@dataclass(frozen=True)
class Inits:
    """Checkpoints a run starts from: ``init`` for the model (run.init), ``resizer`` for a
    transfer's resizer (run.resizer_init); ``None`` where the run names none."""

    init: dict[str, Any] | None = None
    resizer: dict[str, Any] | None = None


def recipe_for(run: Run, train: dict[str, Any]) -> Recipe:
    """The run's optimisation recipe: its lr and epochs, params.yaml's ``train.sgd``,
    warm-up and clipping, and its resizer's lr multiplier and weight decay."""
    knobs = run.resizer_knobs
    return Recipe(epochs=run.epochs, lr=run.lr, **train["sgd"],
                  warmup_epochs=train["warmup_epochs"], grad_clip=train["grad_clip"],
                  resizer_lr_mult=knobs.get("lr_mult", 1.0),
                  resizer_weight_decay=knobs.get("weight_decay"))


def cost_of(model: nn.Module, run: Run) -> dict[str, Any]:
    """Parameters and GMACs of the whole model and of its resizer, at the run's input size."""
    return {"params": count_trainable_params(model),
            "resizer_params": count_trainable_params(model.resizer),
            "resizer_conv_weights": count_conv_weights(model.resizer),
            "gmacs": round(count_macs(model, run.input_size) / 1e9, 6),
            "resizer_gmacs": round(count_macs(model.resizer, run.input_size) / 1e9, 6),
            "macs_tool": MACS_TOOL}


def build_run_model(run: Run, num_outputs: int, inits: Inits) -> nn.Module:
    """The run's resizer + backbone, warm-started as the run says: from its published
    weights, or from the checkpoints of the runs it names."""
    model = new_model(run, num_outputs)
    if run.loads_weights:
        model.backbone = load_published(run.backbone, run.weights, num_outputs)
    if run.init is not None:
        if inits.init is None:
            raise ValueError(f"run {run.name} starts from {run.init}: pass its checkpoint")
        load_backbone(model, inits.init, backbone=run.backbone, num_classes=num_outputs,
                      source=f"checkpoint of {run.init.task}/{run.backbone}/{run.init.mode}",
                      new_head=run.init.task != run.task)
    if run.resizer_init is not None:
        if inits.resizer is None:
            raise ValueError(f"run {run.name} starts its resizer from {run.resizer_init}: pass "
                             f"that checkpoint")
        load_resizer(model, inits.resizer, r=run.r, n=run.n,
                     source=f"checkpoint of {run.resizer_init.task}/{run.resizer_init.backbone}/"
                            f"{run.resizer_init.mode}")
    return model


def train_run(run: Run, params: dict[str, Any], manifests: dict[str, pd.DataFrame],
              num_outputs: int, inits: Inits, device: torch.device | Accel,
              resume: ResumeState | None = None, dist: Dist = SINGLE,
              on_epoch: Callable[[dict[str, float]], None] | None = None,
              decoded: dict[str, DecodedImages | None] | None = None) -> RunResult:
    """Train and evaluate one run; ``manifests`` maps the task's split names to manifests
    (``decoded``, where given, to their images decoded once), ``resume`` is where the
    per-epoch training state is kept and ``dist`` this process's place among the
    data-parallel ones. Every process returns the same model and metrics."""
    accel, task = as_accel(device), get_task(run.task)
    model = build_run_model(run, num_outputs, inits)
    accel.prepare(model)
    net = task.wrap(model)  # what the loss and metrics see (IQA: rating distributions)
    loader_cfg, (train_split, test_split) = params["loader"], task.splits
    decoded = decoded or {}
    val_loader = build_loader(loader_cfg["kind"], manifests[test_split],
                              loader_spec(run, loader_cfg, train=False, seed=run.seed, dist=dist),
                              decoded.get(test_split))

    def train_loader(epoch: int):
        spec = loader_spec(run, loader_cfg, train=True, seed=run.seed * 100_003 + epoch, dist=dist)
        return build_loader(loader_cfg["kind"], manifests[train_split], spec,
                            decoded.get(train_split))

    log.info("run %s: %s resizer, %d px -> %d px, %d epochs from %s", run.name, run.resizer,
             run.input_size, run.model_size, run.epochs,
             f"{run.init.task}/{run.init.mode}" if run.init else
             f"published weights ({run.weights})" if run.loads_weights else "scratch")
    departures = overrides(params, run.backbone)
    for line in departures:
        log.warning("published weights: %s", line)
    criterion = task.criterion(params["train"]["sgd"]["label_smoothing"])
    history = fit(net, train_loader, val_loader, recipe_for(run, params["train"]), accel,
                  resume, dist, criterion=criterion, evaluate=task.evaluate, on_epoch=on_epoch)
    final = task.evaluate(net, val_loader, accel, dist)
    if not history:  # 0 epochs (published weights, evaluated only): one record, epoch 0
        history = [epoch_record(0, 0.0, UNTRAINED, final)]
        if on_epoch:
            on_epoch(history[0])
    train_loss = history[-1]["train_loss"] if run.epochs else None
    metrics = {**run_fields(run), **{k: round(final[k], 6) for k in task.metrics},
               "test_loss": round(final["loss"], 6), "test_images": final["images"],
               "train_loss": None if train_loss is None else round(train_loss, 6),
               "health": health(task.name, train_loss, final, final["images"], num_outputs),
               **cost_of(model, run), **run_diagnostics(run, model, val_loader),
               # how it was computed (resources, not params: reruns elsewhere may differ)
               "device": accel.device.type, "processes": dist.world,
               "precision": accel.precision,
               "loader": loader_name(loader_cfg["kind"], decoded.get(train_split)),
               **({"weights_overrides": departures} if run.weights else {})}
    return RunResult(model, history, metrics)


def run_diagnostics(run: Run, model: nn.Module, val_loader: Any) -> dict[str, Any]:
    """Resizer diagnostics (``diag_*``) of a run whose model changes the resolution itself
    (learned resizers, in-model fixed resizers), on the first validation images."""
    if run.input_size == run.model_size:
        return {}
    images = first_images(val_loader, DIAGNOSTIC_IMAGES).to(next(model.parameters()).device)
    found = resizer_diagnostics(model.resizer, images, run.model_size)
    return {f"diag_{k}": v for k, v in found.items()}


def run_fields(run: Run) -> dict[str, Any]:
    """The run's configuration as flat JSON fields (references as ``task/backbone/mode``)."""
    fields = asdict(run)
    fields.pop("knobs")
    fields.update({f"resizer_{k}": v for k, v in run.knobs})
    for key in ("init", "resizer_init"):
        ref = getattr(run, key)
        fields[key] = f"{ref.task}/{ref.backbone}/{ref.mode}" if ref else None
    return fields
