"""Evaluation: top-k error over a whole split."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import torch
from torch import nn
from tqdm import tqdm

log = logging.getLogger(__name__)


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks: tuple[int, ...]) -> list[int]:
    """Number of samples whose target is among the top-k logits, for each k."""
    maxk = min(max(ks), logits.shape[1])
    top = logits.topk(maxk, dim=1).indices  # (B, maxk)
    hit = top.eq(targets[:, None])
    return [int(hit[:, :min(k, maxk)].any(dim=1).sum()) for k in ks]


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: torch.device,
             ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """Top-k error (in %) and mean cross-entropy over every image of ``loader``."""
    model.eval()
    correct = [0] * len(ks)
    total, loss_sum, start = 0, 0.0, time.perf_counter()
    for images, targets in tqdm(loader, desc="eval", unit="batch", leave=False, mininterval=5):
        images, targets = images.to(device), targets.to(device)
        logits = model(images)
        loss_sum += float(nn.functional.cross_entropy(logits, targets, reduction="sum"))
        correct = [c + h for c, h in zip(correct, topk_correct(logits, targets, ks))]
        total += targets.numel()
    if total == 0:
        raise ValueError("evaluation loader yielded no images; check the validation manifest")
    seconds = time.perf_counter() - start
    log.info("evaluated %d images in %.1f s (%.0f images/s)", total, seconds, total / seconds)
    metrics = {f"top{k}_err": 100.0 * (1 - c / total) for k, c in zip(ks, correct)}
    metrics.update(loss=loss_sum / total, images=total)
    return metrics
