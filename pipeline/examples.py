"""Example resizer outputs for the figure grid: a learned run's resizer next to bilinear.

The images go through the same eval pipeline the run was evaluated with (the run's loader,
resize + centre crop to its input size); the learned and bilinear outputs are at the model
size, and all three are shown de-normalised to [0, 1].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from pipeline.checkpoint import load_checkpoint
from pipeline.experiment import loader_spec, new_model
from pipeline.figures import Example
from pipeline.loaders import build_loader
from pipeline.loaders.transforms import IMAGENET_MEAN, IMAGENET_STD
from pipeline.runs import Run
from pipeline.tasks import get_task


def spread_rows(manifest: pd.DataFrame, count: int) -> pd.DataFrame:
    """``count`` rows evenly spaced through the manifest (different classes/scores)."""
    if len(manifest) < count:
        raise ValueError(f"figures.examples = {count} but the manifest has {len(manifest)} rows")
    picks = np.linspace(0, len(manifest) - 1, count).round().astype(int)
    return manifest.iloc[picks].reset_index(drop=True)


def to_display(batch: torch.Tensor) -> list[np.ndarray]:
    """Normalised (B, 3, H, W) tensors as (H, W, 3) arrays in [0, 1]-ish display range."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return [img.permute(1, 2, 0).numpy() for img in (batch.float() * std + mean)]


@torch.no_grad()
def examples_for(run: Run, checkpoint: Path, manifests: Path, params: dict[str, Any],
                 count: int, label: str) -> list[Example]:
    """``count`` examples of a learned run's resizer on its task's test split."""
    task = get_task(run.task)
    model = new_model(run, task.num_outputs(manifests))
    state = load_checkpoint(checkpoint)["state_dict"]
    model.load_state_dict(state, strict=True)
    model.eval()
    manifest = spread_rows(pd.read_csv(manifests / f"{task.splits[1]}.csv"), count)
    spec = loader_spec(run, {**params["loader"], "batch_size": count, "workers": 0},
                       train=False, seed=run.seed)
    images, _ = next(iter(build_loader(params["loader"]["kind"], manifest, spec)))
    images = images.float()
    learned = model.resizer(images)
    bilinear = F.interpolate(images, size=learned.shape[-2:], mode="bilinear",
                             align_corners=False, antialias=True)
    return [Example(label, i, b, le) for i, b, le in
            zip(to_display(images), to_display(bilinear), to_display(learned))]

