"""Checkpoints: weights plus the run configuration they belong to, written atomically."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.errors import CheckpointError
from pipeline.io import atomic_path




def checkpoint_bytes(model: nn.Module, meta: dict[str, Any]) -> bytes:
    """Serialised checkpoint. Saved through a buffer so the archive's inner folder is always
    ``archive`` (torch names it after the file), keeping the bytes identical across reruns."""
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "meta": meta}, buffer)
    return buffer.getvalue()


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Save ``model``'s state dict with ``meta`` (run config, class list...) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(checkpoint_bytes(model, meta))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint saved by :func:`save_checkpoint` onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; run the stage that writes it first")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_backbone(model: nn.Module, checkpoint: dict[str, Any], *, backbone: str,
                  num_classes: int, source: str) -> None:
    """Warm-start ``model.backbone`` from a checkpoint of the same backbone and classes.

    The resizer is left as initialised: the paper trains a fresh resizer jointly with the
    baseline's backbone.
    """
    meta = checkpoint["meta"]
    if meta.get("backbone") != backbone or meta.get("num_classes") != num_classes:
        raise CheckpointError(
            f"{source} holds backbone {meta.get('backbone')!r} with {meta.get('num_classes')} "
            f"classes, but this run needs {backbone!r} with {num_classes} classes; rerun its "
            f"baseline (dvc repro / snakemake rebuild it when its inputs changed)")
    prefix = "backbone."
    state = {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    model.backbone.load_state_dict(state, strict=True)
