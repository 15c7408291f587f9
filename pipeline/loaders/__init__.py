"""Data loaders, chosen by ``loader.kind`` in params.yaml, registered by name."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import pandas as pd

from pipeline.loaders.torch_loader import LoaderSpec, build_torch_loader

log = logging.getLogger(__name__)

LoaderFactory = Callable[[pd.DataFrame, LoaderSpec], Iterable]
LOADERS: dict[str, LoaderFactory] = {"torch": build_torch_loader}


def register_loader(name: str, factory: LoaderFactory) -> None:
    """Make a loader available to ``loader.kind``."""
    LOADERS[name] = factory


def resolve_kind(kind: str) -> str:
    """Turn ``auto`` into the best available loader; check an explicit choice exists."""
    if kind == "auto":
        return "dali" if "dali" in LOADERS else "torch"
    if kind not in LOADERS:
        raise ValueError(f"loader.kind = {kind!r} is not available here; available: "
                         f"{', '.join(sorted(LOADERS))} (or auto)")
    return kind


def build_loader(kind: str, manifest: pd.DataFrame, spec: LoaderSpec) -> Iterable:
    """A loader of ``(images, targets)`` batches for one split."""
    name = resolve_kind(kind)
    log.debug("loader %s for %d images at %d px", name, len(manifest), spec.size)
    return LOADERS[name](manifest, spec)


__all__ = ["LOADERS", "LoaderSpec", "build_loader", "register_loader", "resolve_kind"]
