"""Checkpoints: weights plus the run configuration they belong to, written atomically."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.core.errors import CheckpointError
from pipeline.core.io import atomic_path


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
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, pickle and zip errors alike
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc)[:120]}); it was "
            f"cut short or damaged after the stage that trains {run_of(path)} wrote it: rerun "
            f"that stage (`dvc repro --force` on it, or delete the file and run Snakemake)"
        ) from exc


def run_of(path: Path) -> str:
    """The run a checkpoint belongs to (``task/backbone/mode/seed<s>``), from its path."""
    parts = path.parts
    return "/".join(parts[-5:-1]) if len(parts) >= 5 else str(path.parent)


def classifier_prefixes(backbone: nn.Module) -> tuple[str, ...]:
    """State-dict prefixes of a timm model's classifier (its ``pretrained_cfg`` names it)."""
    cfg = getattr(backbone, "pretrained_cfg", None) or getattr(backbone, "default_cfg", {})
    names = cfg.get("classifier")
    if not names:
        raise CheckpointError(f"{type(backbone).__name__} does not name its classifier "
                              f"(pretrained_cfg['classifier']); its head cannot be replaced")
    return tuple(f"{name}." for name in ((names,) if isinstance(names, str) else names))


def _part(checkpoint: dict[str, Any], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}


def load_backbone(model: nn.Module, checkpoint: dict[str, Any], *, backbone: str,
                  num_classes: int, source: str, new_head: bool = False) -> None:
    """Warm-start ``model.backbone`` from a checkpoint of the same backbone.

    The resizer is left as initialised: the paper trains a fresh resizer jointly with the
    baseline's backbone. With ``new_head`` (an IQA model from an ImageNet one) everything but
    the classifier is loaded and the classifier keeps its fresh initialisation; otherwise the
    checkpoint must have the same number of classes.
    """
    meta = checkpoint["meta"]
    if meta.get("backbone") != backbone or (not new_head and meta.get("num_classes") != num_classes):
        raise CheckpointError(
            f"{source} holds backbone {meta.get('backbone')!r} with {meta.get('num_classes')} "
            f"outputs, but this run needs {backbone!r} with {num_classes}; rerun the run it "
            f"starts from (dvc repro / snakemake rebuild it when its inputs changed)")
    state = _part(checkpoint, "backbone.")
    if not new_head:
        model.backbone.load_state_dict(state, strict=True)
        return
    head = classifier_prefixes(model.backbone)
    state = {k: v for k, v in state.items() if not k.startswith(head)}
    missing, unexpected = model.backbone.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(head)]
    if missing or unexpected:
        raise CheckpointError(f"{source} does not fit {backbone!r} outside its classifier: "
                              f"missing {missing[:5]}, unexpected {unexpected[:5]}")


def load_resizer(model: nn.Module, checkpoint: dict[str, Any], *, r: int, n: int,
                 source: str) -> None:
    """Start ``model.resizer`` from the learned resizer of another run (a transfer)."""
    run = checkpoint["meta"].get("run", {})
    if run.get("resizer") != "learned" or (run.get("r"), run.get("n")) != (r, n):
        raise CheckpointError(
            f"{source} holds a {run.get('resizer')!r} resizer with r={run.get('r')}, "
            f"n={run.get('n')}, but this run needs a learned resizer with r={r}, n={n}; rerun "
            f"the source run with the current r and n")
    model.resizer.load_state_dict(_part(checkpoint, "resizer."), strict=True)
