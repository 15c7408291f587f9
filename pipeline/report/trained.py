"""Finished runs, read back: a run's trained resizer and images through its eval pipeline.

Shared by the figures (examples, frequency responses) and the resizer probe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from pipeline.loaders import build_loader, normalize
from pipeline.params.families import RESIZER_PROBE
from pipeline.params.runs import CHECKPOINT, Run, run_path
from pipeline.training.checkpoint import load_checkpoint
from pipeline.training.model import loader_spec, new_model
from pipeline.training.tasks import get_task


def resizing_runs(runs: list[Run], task: str = "classification") -> list[Run]:
    """The runs of ``task``'s main table whose model changes the resolution itself (learned,
    joint, warm-started and in-model fixed resizers)."""
    return [r for r in runs if r.task == task and r.model_size < r.input_size
            and r.family in RESIZER_PROBE]


def checkpoint_of_run(runs_root: Path, run: Run) -> Path:
    """Where the train stage wrote ``run``'s checkpoint under ``runs_root`` (data/runs)."""
    return runs_root / run_path(*run.coordinates) / CHECKPOINT


def trained_resizer(run: Run, checkpoint: Path, manifests: Path) -> nn.Module:
    """The resizer of a finished run, in eval mode."""
    model = new_model(run, get_task(run.task).num_outputs(manifests))
    model.load_state_dict(load_checkpoint(checkpoint)["state_dict"], strict=True)
    return model.resizer.eval()


def eval_batches(run: Run, manifest: pd.DataFrame, params: dict[str, Any],
                 batch_size: int | None = None):
    """(images, targets) batches of ``manifest`` through the run's eval pipeline (resize +
    centre crop to its input size, normalised), in manifest order."""
    loader = {**params["loader"], "workers": 0}
    if batch_size is not None:
        loader["batch_size"] = batch_size
    spec = loader_spec(run, loader, train=False, seed=run.seed)
    return build_loader(params["loader"]["kind"], manifest, spec)


def run_images(run: Run, manifest: pd.DataFrame, params: dict[str, Any]) -> torch.Tensor:
    """Every image of ``manifest`` (a few rows) through the run's eval pipeline, one batch."""
    images, _ = next(iter(eval_batches(run, manifest, params, batch_size=len(manifest))))
    return normalize(images)
