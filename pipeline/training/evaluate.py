"""Evaluation, below the training loop: the model's predictions over a split and each task's
metrics from them. The report and the benchmarks evaluate through this module, never through
the loop (``pipeline.training.loop``), so editing the loop reruns no figure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator

import torch
from torch import nn
from tqdm import tqdm

from pipeline.loaders.common import timed
from pipeline.training import distributed
from pipeline.training.device import Accel, as_accel
from pipeline.training.distributed import SINGLE, Dist
from pipeline.training.iqa import BINS, iqa_metrics

log = logging.getLogger(__name__)


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks: tuple[int, ...]) -> list[int]:
    """Number of samples whose target is among the top-k logits, for each k."""
    maxk = min(max(ks), logits.shape[1])
    top = logits.topk(maxk, dim=1).indices  # (B, maxk)
    hit = top.eq(targets[:, None])
    return [int(hit[:, :min(k, maxk)].any(dim=1).sum()) for k in ks]


@torch.no_grad()
def predictions(model: nn.Module, loader: Iterable, accel: Accel,
                dist: Dist = SINGLE) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The evaluation loop every task shares: the model's outputs (float) and the targets,
    batch by batch, in eval mode under the device's autocast; a shard's padding batches (the
    eval loaders pad with empty batches, never with repeated images) are skipped."""
    model.eval()
    for images, targets in timed(tqdm(loader, desc="eval", unit="batch", leave=False,
                                      mininterval=5, disable=not dist.main)):
        if targets.shape[0] == 0:
            continue
        images, targets = accel.batch(images, targets)
        with accel.autocast():
            outputs = model(images)
        yield outputs.float(), targets


def log_rate(images: int, start: float) -> None:
    """Log how many images an evaluation took and its rate."""
    seconds = time.perf_counter() - start
    log.info("evaluated %d images in %.1f s (%.0f images/s)", images, seconds, images / seconds)


@torch.no_grad()
def evaluate_split(model: nn.Module, loader: Iterable, device: torch.device | Accel,
                   dist: Dist = SINGLE, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """Top-k error (in %) and mean cross-entropy over every image of a split.

    With several processes each evaluates its shard (the eval loaders pad with empty batches,
    never with repeated images) and the sums are added up, so every image counts exactly once.
    """
    accel = as_accel(device)
    correct = [0] * len(ks)
    total, loss_sum, start = 0, 0.0, time.perf_counter()
    for logits, targets in predictions(model, loader, accel, dist):
        loss_sum += float(nn.functional.cross_entropy(logits, targets, reduction="sum"))
        correct = [c + h for c, h in zip(correct, topk_correct(logits, targets, ks))]
        total += targets.numel()
    loss_sum, total, *correct = distributed.all_sum([loss_sum, total, *correct], dist,
                                                    accel.device)
    if total == 0:
        raise ValueError("evaluation loader yielded no images; check the validation manifest")
    log_rate(int(total), start)
    metrics = {f"top{k}_err": 100.0 * (1 - c / total) for k, c in zip(ks, correct)}
    metrics.update(loss=loss_sum / total, images=int(total))
    return metrics


@torch.no_grad()
def evaluate_iqa(model: nn.Module, loader: Iterable, device: torch.device | Accel,
                 dist: Dist = SINGLE) -> dict[str, float]:
    """NIMA's metrics over every image of a split (``model`` outputs distributions).

    Each process predicts its contiguous shard; the shards are gathered in rank order, which
    is manifest order, so the metrics equal those of one process.
    """
    preds, targets, start = [], [], time.perf_counter()
    for pred, target in predictions(model, loader, as_accel(device), dist):
        preds.append(pred.cpu())
        targets.append(target.float().cpu())
    shards = distributed.gather((torch.cat(preds) if preds else torch.empty(0, BINS),
                                 torch.cat(targets) if targets else torch.empty(0, BINS)), dist)
    pred, target = (torch.cat([s[i] for s in shards]) for i in (0, 1))
    log_rate(len(pred), start)
    metrics = iqa_metrics(pred, target)
    metrics.update(loss=metrics["emd"], images=int(len(pred)))
    return metrics
