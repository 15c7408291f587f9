"""The training loop: SGD with momentum, label smoothing, step decay (the paper's recipe)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

from pipeline.evaluate import evaluate
from pipeline.resume import ResumeState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    """Optimisation settings of one run (from ``train`` in params.yaml)."""

    epochs: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    lr_decay: float = 0.94
    lr_decay_epochs: int = 2


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """SGD with momentum; no weight decay on biases and normalisation parameters."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum)


def make_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe):
    """Multiply the learning rate by ``lr_decay`` every ``lr_decay_epochs`` epochs."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=recipe.lr_decay_epochs,
                                           gamma=recipe.lr_decay)


def train_one_epoch(model: nn.Module, loader: Iterable, criterion: nn.Module,
                    optimizer: torch.optim.Optimizer, device: torch.device,
                    desc: str = "train") -> dict[str, float]:
    """One pass over ``loader``; returns mean loss, images and images/s."""
    model.train()
    loss_sum, seen, start = 0.0, 0, time.perf_counter()
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, mininterval=5)
    for images, targets in bar:
        images, targets = images.to(device), targets.to(device)
        loss = criterion(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * targets.numel()
        seen += targets.numel()
    if seen == 0:
        raise ValueError("training loader yielded no batch; the train split is smaller than "
                         "loader.batch_size (lower it or add images)")
    seconds = time.perf_counter() - start
    return {"loss": loss_sum / seen, "images": seen, "images_per_s": seen / seconds}


def fit(model: nn.Module, train_loader: Callable[[int], Iterable], val_loader: Iterable,
        recipe: Recipe, device: torch.device,
        resume: ResumeState | None = None) -> list[dict[str, float]]:
    """Train for ``recipe.epochs``; ``train_loader(epoch)`` gives each epoch's loader.

    With ``resume``, the state is saved after every epoch and a matching saved state is
    continued from. Returns one record per epoch (train loss, lr, validation errors).
    """
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    optimizer = make_optimizer(model, recipe)
    scheduler = make_scheduler(optimizer, recipe)
    start, history = resume.load(model, optimizer, scheduler) if resume else (0, [])
    for epoch in range(start, recipe.epochs):
        lr = optimizer.param_groups[0]["lr"]
        stats = train_one_epoch(model, train_loader(epoch), criterion, optimizer, device,
                                desc=f"epoch {epoch + 1}/{recipe.epochs}")
        scheduler.step()
        val = evaluate(model, val_loader, device)
        log.info("epoch %d/%d lr %.5f loss %.4f val top-1 err %.2f%% (%.0f images/s)",
                 epoch + 1, recipe.epochs, lr, stats["loss"], val["top1_err"],
                 stats["images_per_s"])
        history.append({"epoch": epoch + 1, "lr": lr, "train_loss": stats["loss"],
                        "val_loss": val["loss"], "val_top1_err": val["top1_err"],
                        "val_top5_err": val["top5_err"]})
        if resume:
            resume.save(model, optimizer, scheduler, epoch + 1, history)
    return history
