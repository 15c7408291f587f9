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

from pipeline.core.manifests import read_manifest
from pipeline.loaders.transforms import IMAGENET_MEAN, IMAGENET_STD
from pipeline.models import TRAINABLE
from pipeline.params.runs import BASELINE_MODE, MANIFESTS, Run
from pipeline.report.figures import Example
from pipeline.report.trained import checkpoint_of_run, run_images, trained_resizer
from pipeline.training.diagnostics import frequency_response, reference_resizers
from pipeline.training.tasks import get_task


def spread_rows(manifest: pd.DataFrame, count: int) -> pd.DataFrame:
    """``count`` rows evenly spaced through the manifest (different classes/scores)."""
    if len(manifest) < count:
        raise ValueError(f"figures.examples = {count} but the manifest has {len(manifest)} rows")
    picks = np.linspace(0, len(manifest) - 1, count).round().astype(int)
    return manifest.iloc[picks].reset_index(drop=True)


def test_rows(run: Run, manifests: Path, count: int, *, at_most: bool = False) -> pd.DataFrame:
    """``count`` rows spread through the run's test split (with ``at_most``: all of them when
    there are fewer)."""
    manifest = read_manifest(manifests, get_task(run.task).splits[1])
    return spread_rows(manifest, min(count, len(manifest)) if at_most else count)


def to_display(batch: torch.Tensor) -> list[np.ndarray]:
    """Normalised (B, 3, H, W) tensors as (H, W, 3) arrays in [0, 1]-ish display range."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return [img.permute(1, 2, 0).numpy() for img in (batch.float() * std + mean)]


def default_resizer(params: dict[str, Any], task: str) -> str:
    """The fixed resizer of the task's ``default`` mode (bilinear; bicubic for IQA)."""
    return params[task]["baselines"][BASELINE_MODE]["resizer"]


@torch.no_grad()
def examples_for(run: Run, checkpoint: Path, manifests: Path, params: dict[str, Any],
                 count: int, label: str) -> list[Example]:
    """``count`` examples of a learned run's resizer on its task's test split, beside the
    task's default fixed resize (antialiased) to the same size."""
    images = run_images(run, test_rows(run, manifests, count), params)
    learned = trained_resizer(run, checkpoint, manifests)(images)
    fixed = default_resizer(params, run.task)
    reference = F.interpolate(images, size=learned.shape[-2:], mode=fixed,
                              align_corners=False, antialias=True)
    return [Example(label, i, b, le, fixed) for i, b, le in
            zip(to_display(images), to_display(reference), to_display(learned))]


@torch.no_grad()
def responses_for(runs: list[Run], runs_root: Path, params: dict[str, Any],
                  count: int) -> pd.DataFrame:
    """Frequency responses (:func:`pipeline.training.diagnostics.frequency_response`) of every run's
    resizer (on ``count`` test images, or all when there are fewer) and, on the first run's
    images, of the antialiased and plain bilinear resize. A
    fixed resizer does not depend on the backbone: it is shown once, under its own name, and
    ``bilinear_noaa`` is the plain bilinear reference itself."""
    rows, shown = [], {"bilinear_noaa"}
    for index, run in enumerate(runs):
        learned = run.resizer in TRAINABLE
        if not learned and run.resizer in shown and index > 0:
            continue
        shown.add(run.resizer)
        manifests = Path(MANIFESTS[run.task])
        images = run_images(run, test_rows(run, manifests, count, at_most=True), params)
        checkpoint = checkpoint_of_run(runs_root, run)
        name = f"{run.backbone} {run.mode}" if learned else run.resizer
        resizers = {} if run.resizer == "bilinear_noaa" else {
            name: trained_resizer(run, checkpoint, manifests)}
        if index == 0:
            refs = reference_resizers(run.model_size)
            resizers = {"bilinear, antialiased (default pipeline)": refs["bilinear_aa"],
                        "bilinear, plain (the learned skip)": refs["bilinear_noaa"], **resizers}
        rows += [{"resizer": name, "frequency": f, "response": r}
                 for name, resize in resizers.items()
                 for f, r in frequency_response(resize, images)]
    return pd.DataFrame(rows)
