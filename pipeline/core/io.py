"""Atomic writes: an interrupted stage never leaves a file that looks complete.

Everything is written to a temporary sibling (``.<name>.<random>.tmp``) and renamed into place
(``os.replace`` is atomic on POSIX within one filesystem). The next write of the same path
removes the temporary siblings a killed process left behind, and what is renamed into place
gets the modes the user's umask gives ordinary files (temporary files are created private).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.core.errors import DiskFullError


def file_digest(path: str | Path) -> str:
    """MD5 of a file (ties a resume state to the exact init checkpoint, a plan digest to a
    weights file)."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: errno values that mean "the filesystem (or the user's quota) is full".
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
#: Headroom kept on top of an estimate of what a stage writes.
FREE_SPACE_MARGIN = 64 << 20


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The process's umask, read once (reading it means setting it).
UMASK = _umask()


def _clear_leftovers(path: Path) -> None:
    """Remove the temporary siblings of ``path`` that a killed writer left."""
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_leftovers(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~UMASK)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` (a directory) on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_leftovers(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    old = path.parent / f".{path.name}.old"
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~UMASK)
        if old.exists():
            shutil.rmtree(old)
        if path.exists():
            os.replace(path, old)  # move aside: the final path never holds a half-deleted tree
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_text(path: str | Path, text: str) -> None:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically with sorted keys (stable bytes for the same data)."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    """Write a CSV atomically, without the index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


def human_bytes(n: float) -> str:
    """``n`` bytes in binary units (``1.5 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def free_bytes(path: str | Path) -> int:
    """Free bytes on the filesystem that holds ``path`` (or would hold it: the nearest
    existing parent is asked)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def disk_full_advice(path: str | Path) -> str:
    """What to do about a full disk at ``path``."""
    return (f"free space on the filesystem of {path} (remove old runs under data/runs, "
            f"`dvc gc` unused cache entries) or move it to a larger disk, then rerun the stage "
            f"(a training stage resumes from its last finished epoch)")


def ensure_free_space(path: str | Path, needed: int, what: str) -> None:
    """Raise :class:`DiskFullError` unless ``needed`` bytes (plus a margin) are free where
    ``path`` is written, so a stage stops in seconds instead of after hours of work."""
    free = free_bytes(path)
    if free < needed + FREE_SPACE_MARGIN:
        raise DiskFullError(f"{path}: {what} needs about {human_bytes(needed + FREE_SPACE_MARGIN)} "
                            f"but only {human_bytes(free)} is free there; {disk_full_advice(path)}")


def is_disk_full(exc: BaseException) -> bool:
    """True for the ``OSError`` a write raises on a full disk or quota."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def disk_full_message(exc: OSError, path: str | Path) -> str:
    """One message for a full-disk ``OSError`` while writing ``path`` (the error's own file
    name wins when it has one)."""
    where = Path(exc.filename) if exc.filename else Path(path)
    try:
        free = human_bytes(free_bytes(where))
    except OSError:
        free = "unknown"
    return (f"no space left while writing {where} ({exc.strerror or exc}); free there now: "
            f"{free}; {disk_full_advice(where)}")


@contextmanager
def reporting_disk_full(path: str | Path) -> Iterator[None]:
    """Turn a full-disk ``OSError`` raised inside the block into a :class:`DiskFullError`
    naming ``path`` (a failed ``write()`` does not say which file it was writing)."""
    try:
        yield
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise DiskFullError(disk_full_message(exc, path)) from exc
