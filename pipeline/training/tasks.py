"""The two tasks, registered by name: what a model outputs, its loss and its test metrics.

``classification``: one logit per class, cross-entropy with label smoothing, top-1/top-5 error.
``iqa``: 10 logits turned into a rating distribution (:class:`pipeline.training.iqa.DistributionHead`),
EMD loss with r=2 against the normalised vote histogram, and NIMA's metrics (PLCC/SRCC of mean
scores and of standard deviations, binary accuracy at 5, EMD) on the test split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pipeline.core.manifests import read_manifest
from pipeline.params.runs import PRIMARY_METRIC, TASK_KIND, TASK_METRICS
from pipeline.training.evaluate import evaluate_iqa, evaluate_split
from pipeline.training.iqa import BINS, DistributionHead
from pipeline.training.losses import emd_loss

Evaluator = Callable[..., dict[str, float]]


@dataclass(frozen=True)
class Task:
    """How one task trains and is evaluated.

    ``splits`` are the manifests' (train, test) names; ``num_outputs`` the model's outputs for
    a prepared manifests folder; ``wrap`` turns the backbone's logits
    into what the loss and metrics take; ``metrics`` are the reported ones with their
    direction (+1: higher is better); ``primary`` is the one logged per epoch.
    """

    name: str
    splits: tuple[str, str]
    num_outputs: Callable[[Path], int]
    criterion: Callable[[float], nn.Module]
    wrap: Callable[[nn.Module], nn.Module]
    evaluate: Evaluator
    metrics: dict[str, int]
    primary: str


class EmdLoss(nn.Module):
    """EMD (r=2) between predicted and target distributions, mean over the batch."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return emd_loss(pred.float(), target.float(), r=2.0)


def class_count(manifests: Path) -> int:
    """Classes of a classification run: the rows of the prepare stage's classes.csv."""
    return len(read_manifest(manifests, "classes"))


CLASSIFICATION = Task(
    name="classification", splits=("train", "val"), num_outputs=class_count,
    criterion=lambda smoothing: nn.CrossEntropyLoss(label_smoothing=smoothing),
    wrap=lambda model: model, evaluate=evaluate_split,
    metrics=TASK_METRICS["classification"], primary=PRIMARY_METRIC["classification"])

IQA = Task(
    name="iqa", splits=("train", "test"), num_outputs=lambda _: BINS,
    criterion=lambda _: EmdLoss(), wrap=DistributionHead, evaluate=evaluate_iqa,
    metrics=TASK_METRICS["iqa"], primary=PRIMARY_METRIC["iqa"])

#: The task registry, one entry per kind of :data:`pipeline.params.runs.TASK_KIND`.
REGISTRY: dict[str, Task] = {t.name: t for t in (CLASSIFICATION, IQA)}


def get_task(name: str) -> Task:
    """A task's registered kind (``attenuated`` is classification); ValueError naming the
    tasks otherwise."""
    if name not in TASK_KIND:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASK_KIND)}")
    return REGISTRY[TASK_KIND[name]]


__all__ = ["REGISTRY", "Task", "get_task"]
