"""The training loop: SGD with momentum, label smoothing, step decay (the paper's recipe).

The same loop runs in one process or in each of several data-parallel ones
(:mod:`pipeline.training.distributed`), on the CPU in fp32 or on a GPU with mixed precision
(:mod:`pipeline.training.device`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from pipeline.core.errors import ConfigError
from pipeline.core.io import ensure_free_space
from pipeline.loaders.common import timed
from pipeline.training import distributed
from pipeline.training.device import Accel, as_accel
from pipeline.training.distributed import SINGLE, Dist
from pipeline.training.evaluate import evaluate_split
from pipeline.training.resume import ResumeState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    """Optimisation settings of one run (from ``train`` in params.yaml, by
    :func:`pipeline.training.runner.recipe_for`; no defaults of its own).

    ``warmup_epochs``: linear warm-up, epoch e (from 0) at ``(e + 1) / (warmup_epochs + 1)``
    of the lr. ``grad_clip``: the gradient's global norm is clipped to it (``None``: never).
    ``resizer_lr_mult`` and ``resizer_weight_decay`` (``None``: ``weight_decay``) apply to
    the parameters of a learned resizer (the model's ``resizer`` submodule).
    """

    epochs: int
    lr: float
    momentum: float
    weight_decay: float
    label_smoothing: float
    lr_decay: float
    lr_decay_epochs: int
    warmup_epochs: int
    grad_clip: float | None
    resizer_lr_mult: float
    resizer_weight_decay: float | None


def is_resizer_param(name: str) -> bool:
    """Whether a parameter name lies in a ``resizer`` submodule (any wrapping depth)."""
    return name.startswith("resizer.") or ".resizer." in name


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """SGD with momentum; no weight decay on biases and normalisation parameters; the
    resizer's parameters at ``resizer_lr_mult`` x the lr with their own weight decay."""
    resizer_decay = (recipe.weight_decay if recipe.resizer_weight_decay is None
                     else recipe.resizer_weight_decay)
    groups = []
    for resizer, lr, decay in ((False, recipe.lr, recipe.weight_decay),
                               (True, recipe.lr * recipe.resizer_lr_mult, resizer_decay)):
        params = [(n, p) for n, p in model.named_parameters()
                  if p.requires_grad and is_resizer_param(n) == resizer]
        groups += [{"params": [p for _, p in params if p.ndim > 1], "weight_decay": decay,
                    "lr": lr},
                   {"params": [p for _, p in params if p.ndim <= 1], "weight_decay": 0.0,
                    "lr": lr}]
    return torch.optim.SGD([g for g in groups if g["params"]], lr=recipe.lr,
                           momentum=recipe.momentum)


def lr_factor(epoch: int, recipe: Recipe) -> float:
    """Share of the base lr in ``epoch`` (from 0): linear warm-up, then ``lr_decay`` every
    ``lr_decay_epochs`` epochs."""
    warm = min(1.0, (epoch + 1) / (recipe.warmup_epochs + 1))
    return warm * recipe.lr_decay ** (epoch // recipe.lr_decay_epochs)


def make_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe):
    """Per-epoch lr: :func:`lr_factor` of each group's base lr."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: lr_factor(epoch, recipe))


def state_nbytes(model: nn.Module) -> int:
    """Bytes of the model's weights and buffers (about one checkpoint)."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


#: A model's parameters in order, each with its gradient-norm group (0: backbone, 1: resizer).
NormGroups = list[tuple[nn.Parameter, int]]


def norm_groups(model: nn.Module) -> NormGroups:
    """The model's parameters and their groups, listed once per epoch (walking the module
    tree every step cost 0.7 ms of a 28 ms test_byobnet step)."""
    return [(param, int(is_resizer_param(name))) for name, param in model.named_parameters()]


def grad_norms(params: NormGroups) -> torch.Tensor:
    """(2,) global gradient norms of the backbone's and the resizer's parameters: float64 sums
    of squares, added in parameter order."""
    zero = torch.zeros((), dtype=torch.float64, device=params[0][0].device)
    sums = [zero, zero]
    for param, group in params:
        if param.grad is not None:
            sums[group] = sums[group] + param.grad.detach().double().pow(2).sum()
    return torch.stack(sums).sqrt()


def step(params: NormGroups, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
         grad_clip: float | None, scaler: torch.amp.GradScaler | None) -> torch.Tensor:
    """Backward and one optimiser step of the model whose :func:`norm_groups` are ``params``
    (gradient clipped to ``grad_clip``); returns the (backbone, resizer) gradient norms before
    clipping."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
    else:  # fp16: scale the loss so small gradients survive, skip steps that overflow
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    norms = grad_norms(params)
    if grad_clip is not None:
        nn.utils.clip_grad_norm_([param for param, _ in params], grad_clip)
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()
    return norms


def train_one_epoch(model: nn.Module, loader: Iterable, criterion: nn.Module,
                    optimizer: torch.optim.Optimizer, device: torch.device | Accel,
                    desc: str = "train", *, scaler: torch.amp.GradScaler | None = None,
                    dist: Dist = SINGLE, grad_clip: float | None = None) -> dict[str, float]:
    """One pass over ``loader``; returns mean loss, images and images/s (over all processes),
    this process's batch count and its mean gradient norms (backbone, resizer) before
    clipping."""
    accel = as_accel(device)
    model.train()
    # Summed on the device in float64 (the same arithmetic as Python floats): no sync per step.
    loss_sum = torch.zeros((), dtype=torch.float64, device=accel.device)
    norm_sum = torch.zeros(2, dtype=torch.float64, device=accel.device)
    seen, batches, start = 0, 0, time.perf_counter()
    params = norm_groups(model)
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, mininterval=5, disable=not dist.main)
    for images, targets in timed(bar):
        images, targets = accel.batch(images, targets)
        with accel.autocast():
            loss = criterion(model(images), targets)
        norm_sum += step(params, loss, optimizer, grad_clip, scaler)
        loss_sum += loss.detach().double() * targets.numel()
        seen += targets.numel()
        batches += 1
    total_loss, seen = distributed.all_sum([float(loss_sum), seen], dist, accel.device)
    if seen == 0:
        raise ConfigError("the training loader yielded no batch: the train split is smaller "
                          "than loader.batch_size; lower it or add images")
    seconds = time.perf_counter() - start
    backbone_norm, resizer_norm = (norm_sum / max(batches, 1)).tolist()
    return {"loss": total_loss / seen, "images": int(seen), "images_per_s": seen / seconds,
            "batches": batches, "grad_norm_backbone": backbone_norm,
            "grad_norm_resizer": resizer_norm}


#: The training statistics of an epoch that did not train (a 0-epoch run's record).
UNTRAINED = {"loss": float("nan"), "grad_norm_backbone": float("nan"),
             "grad_norm_resizer": float("nan")}


def epoch_record(epoch: int, lr: float, stats: dict[str, Any], val: dict[str, Any]
                 ) -> dict[str, float]:
    """One row of history.csv: the epoch's lr and training statistics, then its validation
    metrics as ``val_*``. Epoch 0 of a run that trains no epoch (published weights,
    evaluated only) holds its evaluation and :data:`UNTRAINED`."""
    return {"epoch": epoch, "lr": lr, "train_loss": stats["loss"],
            "grad_norm_backbone": stats["grad_norm_backbone"],
            "grad_norm_resizer": stats["grad_norm_resizer"], "val_loss": val["loss"],
            **{f"val_{k}": v for k, v in val.items() if k not in ("loss", "images")}}


def fit(model: nn.Module, train_loader: Callable[[int], Iterable], val_loader: Iterable,
        recipe: Recipe, device: torch.device | Accel, resume: ResumeState | None = None,
        dist: Dist = SINGLE, *, criterion: nn.Module | None = None,
        evaluate: Callable[..., dict[str, float]] = evaluate_split,
        on_epoch: Callable[[dict[str, float]], None] | None = None) -> list[dict[str, float]]:
    """Train for ``recipe.epochs``; ``train_loader(epoch)`` gives each epoch's loader.

    ``model`` is the bare model, already on the device; with several processes it is wrapped
    in DDP here. ``criterion`` defaults to cross-entropy with the recipe's label smoothing;
    ``evaluate(model, loader, accel, dist)`` gives the validation metrics (its ``loss`` and
    every other number become ``val_*`` columns). With ``resume``, the state is saved (by rank
    0) after every epoch and a matching saved state is continued from. ``on_epoch`` sees each
    epoch's record (replayed records of a resumed run first). Returns one record per epoch,
    the same on every process.
    """
    accel = as_accel(device)
    if criterion is None:
        criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    optimizer = make_optimizer(model, recipe)
    scheduler = make_scheduler(optimizer, recipe)
    scaler = accel.grad_scaler()
    if resume is not None and dist.main:
        # the state (weights + momentum), twice while it is replaced, then the checkpoint
        ensure_free_space(resume.path.parent, 5 * state_nbytes(model),
                          "the run's resume state and checkpoint")
    start, history = resume.load(model, optimizer, scheduler) if resume else (0, [])
    for record in history if on_epoch else ():
        on_epoch(record)
    net = distributed.wrap(model, accel, dist)
    for epoch in range(start, recipe.epochs):
        lr = optimizer.param_groups[0]["lr"]
        loader = train_loader(epoch)
        distributed.check_same_length(loader, dist, "training batches")
        stats = train_one_epoch(net, loader, criterion, optimizer, accel,
                                desc=f"epoch {epoch + 1}/{recipe.epochs}", scaler=scaler,
                                dist=dist, grad_clip=recipe.grad_clip)
        scheduler.step()
        if dist.enabled and epoch == start:
            log.info("epoch %d: training batches by process %s", epoch + 1,
                     distributed.gather(stats["batches"], dist))
        distributed.sync_buffers(model, dist)
        val = evaluate(model, val_loader, accel, dist)
        record = epoch_record(epoch + 1, lr, stats, val)
        log.info("epoch %d/%d lr %.5f loss %.4f val %s (%.0f images/s%s)", epoch + 1,
                 recipe.epochs, lr, stats["loss"],
                 " ".join(f"{k[4:]} {v:.4g}" for k, v in record.items() if k.startswith("val_")),
                 stats["images_per_s"], f" over {dist.world} processes" if dist.enabled else "")
        history.append(record)
        if on_epoch:
            on_epoch(record)
        if resume and dist.main:
            resume.save(model, optimizer, scheduler, epoch + 1, history)
    return history
