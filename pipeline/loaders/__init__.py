"""Data loaders, chosen by ``loader.kind`` in params.yaml, registered by name.

``torch``: the torchvision reference loader. ``dali``: DALI, decoding and resizing on the GPU
when there is one; on the CPU, DALI decodes and torchvision resizes. Every loader yields uint8
batches; :func:`normalize` turns them into the models' float inputs. ``auto``: DALI when it
can be imported, else torch. Importing this package does not import DALI; only building a DALI
loader (or resolving ``auto``) does. A run builds every loader through one kind, so a model is evaluated with the
decode/resize implementation it was trained with.

Where a split's images were decoded once (:mod:`pipeline.loaders.decoded`) and the loader would
run on the CPU (``torch``, or ``auto``/``dali`` without a GPU), :func:`build_loader` crops and
resizes from them instead: the reference loader's batches bit for bit, without decoding again.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable

import pandas as pd

from pipeline.core.errors import ConfigError
from pipeline.loaders.common import LoaderSpec
from pipeline.loaders.dali_loader import build_dali_loader, gpu_present
from pipeline.loaders.decoded import DecodedImages, DecodedLoader
from pipeline.loaders.torch_loader import build_torch_loader
from pipeline.loaders.transforms import normalize

log = logging.getLogger(__name__)

LoaderFactory = Callable[[pd.DataFrame, LoaderSpec], Iterable]
LOADERS: dict[str, LoaderFactory] = {"torch": build_torch_loader, "dali": build_dali_loader}
#: Loaders that need an optional package, and the check that it is usable here.
OPTIONAL: dict[str, Callable[[], str | None]] = {}


def register_loader(name: str, factory: LoaderFactory) -> None:
    """Make a loader available to ``loader.kind``."""
    LOADERS[name] = factory


@functools.cache
def dali_import_error() -> str | None:
    """Why DALI cannot be used here (``None`` when it can); imports it once."""
    try:
        import nvidia.dali  # noqa: F401
        import nvidia.dali.plugin.pytorch  # noqa: F401
    except (ImportError, OSError, RuntimeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


OPTIONAL["dali"] = dali_import_error


def unusable(kind: str) -> str | None:
    """Why registered loader ``kind`` cannot run here (``None`` when it can)."""
    check = OPTIONAL.get(kind)
    return check() if check is not None else None


def resolve_kind(kind: str) -> str:
    """Turn ``auto`` into the best available loader (DALI, on the GPU when there is one,
    else on the CPU; torch when DALI cannot be imported); check an explicit choice is usable."""
    if kind == "auto":
        return "dali" if unusable("dali") is None else "torch"
    if kind not in LOADERS:
        raise ConfigError(f"loader.kind = {kind!r} is not a loader; available: "
                          f"{', '.join(sorted(LOADERS))} (or auto)")
    problem = unusable(kind)
    if problem is not None:
        raise ConfigError(f"loader.kind = {kind!r} but it cannot be used here ({problem}); "
                          f"install nvidia-dali-cuda130 (Linux x86-64) or set loader.kind to "
                          f"torch or auto")
    return kind


@functools.cache
def _announce(kind: str, name: str) -> None:
    log.info("loader.kind %s: using the %s loader", kind, name)


#: What :func:`loader_name` calls the loader that reads decoded images.
DECODED = "decoded"


def loader_name(kind: str, decoded: DecodedImages | None = None) -> str:
    """The loader :func:`build_loader` uses for ``kind``: ``decoded`` where decoded images are
    given and the loader runs on the CPU (resolving ``auto`` then imports no DALI), else the
    resolved kind."""
    if decoded is not None and kind in ("auto", "torch", "dali") and not gpu_present():
        if kind == "dali":
            resolve_kind(kind)  # still refuse a DALI that cannot be used here
        return DECODED
    return resolve_kind(kind)


def build_loader(kind: str, manifest: pd.DataFrame, spec: LoaderSpec,
                 decoded: DecodedImages | None = None) -> Iterable:
    """A loader of ``(images, targets)`` batches for one split; ``decoded``: its images
    decoded once (:mod:`pipeline.loaders.decoded`), used where the loader runs on the CPU."""
    name = loader_name(kind, decoded)
    _announce(kind, name)
    if name == DECODED:
        return DecodedLoader(manifest, spec, decoded)
    log.debug("loader %s for %d images at %d px", name, len(manifest), spec.size)
    return LOADERS[name](manifest, spec)


__all__ = ["DECODED", "LOADERS", "DecodedImages", "LoaderSpec", "build_loader",
           "dali_import_error", "loader_name", "normalize", "register_loader", "resolve_kind"]
