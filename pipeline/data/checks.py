"""Every image examined once at prepare time: a verdict per file, and what is done about it.

:func:`check_image` is a pure function of one file's bytes. Its verdict decides the action:

======================  =========  ===========================================================
verdict                 action     why
======================  =========  ===========================================================
``ok``                  keep       a baseline RGB JPEG with upright pixels
``not_jpeg``            convert    e.g. ImageNet's PNG named ``.JPEG``: GPU JPEG decoders fail
``cmyk``                convert    CMYK JPEG (ImageNet has 22): nvJPEG and PIL disagree on it
``grayscale``           convert    one channel; every loader would have to expand it
``non_rgb``             convert    palette, alpha or 16-bit images
``exif_rotated``        convert    EXIF orientation 2..8: loaders differ in honouring it
``missing``             drop       listed (a label row, a dangling link) but no file
``empty``               drop       zero bytes
``truncated``           drop       the decoder ran out of data
``undecodable``         drop       not an image, or a decoder error
======================  =========  ===========================================================

Convertible files are rewritten once as baseline RGB JPEGs (EXIF orientation applied to the
pixels, no EXIF kept) in a ``converted/`` folder next to the manifest, and the manifest points
at the copy. The pixels are exactly what the torch loader's ``exif_transpose(...).convert("RGB")``
gives, so every loader (torch, DALI on CPU or GPU) reads the same image for every manifest row;
loaders only ever see ``ok`` files. Width and height in manifests are those of the pixels a
loader decodes (after orientation).

:func:`examine_all` runs the checks (and conversions) in a process pool with a progress bar;
results come back in job order, so outputs do not depend on the number of workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

log = logging.getLogger(__name__)
T, R = TypeVar("T"), TypeVar("R")

OK, NOT_JPEG, CMYK, GRAYSCALE, NON_RGB, EXIF_ROTATED = (
    "ok", "not_jpeg", "cmyk", "grayscale", "non_rgb", "exif_rotated")
MISSING, EMPTY, TRUNCATED, UNDECODABLE = "missing", "empty", "truncated", "undecodable"
KEEP, CONVERT, DROP, IGNORE = "keep", "convert", "drop", "ignore"

#: Verdict -> action. A file with several problems gets the first of not_jpeg,
#: cmyk/grayscale/non_rgb, exif_rotated (the detail names them all).
ACTIONS: dict[str, str] = {
    OK: KEEP,
    NOT_JPEG: CONVERT, CMYK: CONVERT, GRAYSCALE: CONVERT, NON_RGB: CONVERT, EXIF_ROTATED: CONVERT,
    MISSING: DROP, EMPTY: DROP, TRUNCATED: DROP, UNDECODABLE: DROP,
}
GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"}
ORIENTATION_TAG = 0x0112
#: Columns of results/data/<dataset>_report.csv: one row per file not kept as it was.
REPORT_COLUMNS = ["path", "split", "verdict", "action", "detail"]


@dataclass(frozen=True)
class FileCheck:
    """The verdict on one file; ``width``/``height`` are the pixels a loader gets (0: dropped)."""

    path: str
    verdict: str
    action: str
    detail: str = ""
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class CheckJob:
    """One file to examine; a convertible file is rewritten to ``convert_to`` when given."""

    path: str
    convert_to: str | None = None
    quality: int = 95


def _verdict(path: str, verdict: str, detail: str, width: int = 0, height: int = 0) -> FileCheck:
    return FileCheck(path, verdict, ACTIONS[verdict], detail, width, height)


def _orientation(img: Image.Image) -> int:
    """EXIF orientation (1 = upright); a corrupt EXIF block counts as upright, as in PIL."""
    try:
        value = img.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001  (corrupt EXIF must not drop a decodable image)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _cut_jpeg(path: str) -> bool:
    """A JPEG start marker but no end marker: a file cut short (e.g. in its headers)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(3)
            fh.seek(max(0, Path(path).stat().st_size - 4096))
            tail = fh.read().rstrip(b"\x00")
    except OSError:
        return False
    return head == b"\xff\xd8\xff" and not tail.endswith(b"\xff\xd9")


def check_image(path: str | Path) -> FileCheck:
    """Examine one file (full decode, so truncation is caught); never raises."""
    path = str(path)
    try:
        size = Path(path).stat().st_size
    except FileNotFoundError:
        return _verdict(path, MISSING, "no such file (or a dangling link)")
    except OSError as exc:
        return _verdict(path, MISSING, f"cannot stat: {exc}")
    if size == 0:
        return _verdict(path, EMPTY, "zero bytes")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with Image.open(path) as img:
                fmt, mode = img.format, img.mode
                orientation = _orientation(img)
                img.load()
                width, height = img.size
    except Exception as exc:  # noqa: BLE001  (any decoder failure is a verdict, not a crash)
        if isinstance(exc, UnidentifiedImageError):
            message = f"not an image any decoder identifies ({size} bytes)"
        else:
            message = f"{type(exc).__name__}: {exc}"
        if _cut_jpeg(path):
            return _verdict(path, TRUNCATED, f"JPEG without its end marker; {message}")
        kind = TRUNCATED if "truncat" in str(exc).lower() else UNDECODABLE
        return _verdict(path, kind, message)
    problems = []
    if fmt != "JPEG":
        problems.append(NOT_JPEG)
    if mode == "CMYK":
        problems.append(CMYK)
    elif mode in GRAY_MODES:
        problems.append(GRAYSCALE)
    elif mode != "RGB":
        problems.append(NON_RGB)
    if orientation != 1:
        problems.append(EXIF_ROTATED)
    detail = f"format {fmt}, mode {mode}, EXIF orientation {orientation}"
    if caught:
        detail += "; warnings: " + "; ".join(sorted({str(w.message) for w in caught}))
    return _verdict(path, problems[0] if problems else OK, detail if problems or caught else "",
                    width, height)


def convert_to_rgb_jpeg(src: str | Path, dst: str | Path, quality: int) -> tuple[int, int]:
    """Rewrite ``src`` as a baseline RGB JPEG with upright pixels; returns (width, height)."""
    with Image.open(src) as img:
        rgb = ImageOps.exif_transpose(img).convert("RGB")
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    rgb.save(dst, format="JPEG", quality=quality)
    return rgb.size


def examine(job: CheckJob) -> FileCheck:
    """Check one file and convert it when its verdict says so (runs in a worker process)."""
    result = check_image(job.path)
    if result.action != CONVERT or job.convert_to is None:
        return result
    try:
        width, height = convert_to_rgb_jpeg(job.path, job.convert_to, job.quality)
    except Exception as exc:  # noqa: BLE001
        return replace(result, action=DROP, detail=f"{result.detail}; conversion failed: {exc}")
    return replace(result, width=width, height=height)


def parallel_map(fn: Callable[[T], R], items: Sequence[T], workers: int, desc: str) -> list[R]:
    """``fn`` over ``items`` in order, with ``workers`` processes (<= 1: in this process) and a
    progress bar; ``fn`` must be a module-level function."""
    bar = dict(total=len(items), desc=desc, unit="img", mininterval=2)
    if workers <= 1 or len(items) < 2:
        return [fn(item) for item in tqdm(items, **bar)]
    chunk = max(1, min(256, len(items) // (workers * 16)))
    # forkserver, not the platform's fork: this process may already run torch/OpenMP, DALI and
    # tqdm threads, and a child forked while one of them holds a lock deadlocks (seen: a test
    # waiting 6 minutes on a child blocked in a futex). forkserver forks from a clean server.
    context = multiprocessing.get_context("forkserver")
    with context.Pool(workers) as pool:
        return list(tqdm(pool.imap(fn, items, chunksize=chunk), **bar))


def examine_all(jobs: Sequence[CheckJob], workers: int, desc: str) -> list[FileCheck]:
    """:func:`examine` every job, in job order."""
    return parallel_map(examine, jobs, workers, desc)


def split_summary(results: Iterable[FileCheck]) -> dict[str, Any]:
    """Counts of one split: source = kept + dropped; converted files are among the kept."""
    results = list(results)
    actions = Counter(r.action for r in results)
    return {
        "source": len(results),
        "kept": actions[KEEP] + actions[CONVERT],
        "converted": actions[CONVERT],
        "dropped": actions[DROP],
        "by_verdict": dict(sorted(Counter(r.verdict for r in results).items())),
        "dropped_by_reason": dict(sorted(Counter(r.verdict for r in results
                                                 if r.action == DROP).items())),
    }


def log_summary(dataset: str, splits: dict[str, dict[str, Any]]) -> None:
    """One log line per split: source, kept, converted, dropped and the reasons."""
    for split, s in splits.items():
        reasons = ", ".join(f"{k} {v}" for k, v in s["dropped_by_reason"].items()) or "none"
        log.info("%s %s: source %d = kept %d (converted %d) + dropped %d (%s)", dataset, split,
                 s["source"], s["kept"], s["converted"], s["dropped"], reasons)
