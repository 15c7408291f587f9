"""Optional pre-resize: smaller copies of a manifest's images, and manifests pointing at them.

For machines whose CPUs cannot decode full-size images fast enough: ImageNet's JPEGs average
about 400 x 350 px (some are several megapixels), and every epoch decodes each of them again.
Copies whose shorter side is at most ``preresize.max_short_side`` (S) decode several times faster.
Choose S no smaller than what the loader brings images to (the largest resizer input, e.g. 448,
divided by ``loader.eval_crop``: 512 for the paper's grid), or the copies lose detail the
learned resizer is meant to use. Larger images are downscaled (bicubic, antialiased) and saved
as JPEG at ``preresize.jpeg_quality``; images already small enough are copied byte for byte.

Off by default (``preresize.enabled: false``), for ImageNet as for AVA: the stage then passes
the manifests through unchanged, so the workflow can always read its output.

Every ``*.csv`` of the input folder with a ``path`` column is rewritten (paths, width, height);
other CSVs (classes.csv, split.csv) are copied. Copies keep their path below the manifest's
common directory, under ``<out>/images/<manifest name>/``.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image, ImageOps

from pipeline.core.errors import DatasetError
from pipeline.core.manifests import index_manifests, manifest_names, read_manifest
from pipeline.data.checks import parallel_map

log = logging.getLogger(__name__)

IMAGES_DIR = "images"


@dataclass(frozen=True)
class ShrinkJob:
    """One image to copy: from ``src`` to ``dst``, shorter side at most ``max_short_side``."""

    src: str
    dst: str
    max_short_side: int
    quality: int


def target_size(width: int, height: int, max_short_side: int) -> tuple[int, int]:
    """(width, height) with the shorter side at most ``max_short_side``, aspect ratio kept."""
    short = min(width, height)
    if short <= max_short_side:
        return width, height
    scale = max_short_side / short
    return (max(1, round(width * scale)) if width != short else max_short_side,
            max(1, round(height * scale)) if height != short else max_short_side)


def shrink(job: ShrinkJob) -> tuple[int, int]:
    """Write the copy; returns its (width, height). Runs in a worker process."""
    Path(job.dst).parent.mkdir(parents=True, exist_ok=True)
    with Image.open(job.src) as img:
        size = target_size(*img.size, job.max_short_side)
        plain = img.format == "JPEG" and img.mode == "RGB" and img.getexif().get(0x0112, 1) == 1
        if size == img.size and plain:
            shutil.copyfile(job.src, job.dst)
            return size
        rgb = ImageOps.exif_transpose(img).convert("RGB")
    size = target_size(*rgb.size, job.max_short_side)
    if size != rgb.size:
        rgb = rgb.resize(size, Image.BICUBIC)
    rgb.save(job.dst, format="JPEG", quality=job.quality)
    return rgb.size


def copy_names(paths: list[str]) -> list[Path]:
    """Each path relative to the paths' common directory (unique because paths are)."""
    absolute = [os.path.abspath(p) for p in paths]
    common = os.path.commonpath([os.path.dirname(p) for p in absolute])
    return [Path(os.path.relpath(p, common)) for p in absolute]


def preresize_manifest(frame: pd.DataFrame, name: str, write_dir: Path, out_dir: Path,
                       max_short_side: int, quality: int, workers: int) -> pd.DataFrame:
    """The manifest with paths to the copies (written under ``write_dir``, referenced under
    ``out_dir``) and their width/height."""
    if frame.empty:
        return frame.copy()
    if frame["path"].duplicated().any():
        raise DatasetError(f"manifest {name}: the same path appears twice")
    rel = [Path(IMAGES_DIR) / name / r for r in copy_names(frame["path"].tolist())]
    jobs = [ShrinkJob(src, str(write_dir / r), max_short_side, quality)
            for src, r in zip(frame["path"], rel)]
    missing = [j.src for j in jobs if not Path(j.src).is_file()]
    if missing:
        raise DatasetError(f"manifest {name}: {len(missing)} images are missing, e.g. "
                           f"{missing[0]}; rerun the prepare stage")
    sizes = parallel_map(shrink, jobs, workers, desc=f"preresize {name}")
    out = frame.copy()
    out["path"] = [str(out_dir / r) for r in rel]
    if {"width", "height"} <= set(out.columns):
        out["width"] = [w for w, _ in sizes]
        out["height"] = [h for _, h in sizes]
    return out


def preresize_dir(manifests: Path, write_dir: Path, out_dir: Path, enabled: bool,
                  max_short_side: int, quality: int, workers: int) -> dict[str, int]:
    """Write every manifest of ``manifests`` (each checked against its index) to
    ``write_dir``: rewritten when it lists images and ``enabled``, else copied byte for byte;
    then the new folder's index. Returns the rows per rewritten manifest."""
    rows, rewritten = {}, {}
    for name in manifest_names(manifests):
        frame = read_manifest(manifests, name)
        rows[name] = len(frame)
        if not enabled or "path" not in frame.columns:
            shutil.copyfile(manifests / f"{name}.csv", write_dir / f"{name}.csv")
            continue
        frame = preresize_manifest(frame, name, write_dir, out_dir, max_short_side,
                                   quality, workers)
        frame.to_csv(write_dir / f"{name}.csv", index=False, lineterminator="\n")
        rewritten[f"{name}.csv"] = rows[name] = len(frame)
        log.info("%s: %d images, shorter side at most %d px", name, len(frame), max_short_side)
    index_manifests(write_dir, rows)
    if not enabled:
        log.info("preresize.enabled is false: manifests of %s passed through unchanged", manifests)
    return rewritten
