"""Outputs versioned in git (``results/``) kept through a Snakemake job that fails.

Snakemake removes a job's outputs before it runs the job, and again when the job fails; for the
tables, metrics, curves and data reports that git tracks, a failing job would leave the
committed files deleted. (DVC keeps them itself: ``persist`` in dvc.yaml.) So the Snakefile
keeps a hard link to each of them when a run starts (:func:`keep`) and, when the run ends,
puts back every one that is then missing (:func:`restore`): a failed job's outputs are the
files they were, a finished job's are its new ones (the stages write atomically, by rename,
so a link never sees a half-written file).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)
#: Where the links live while a run goes on (inside Snakemake's own folder, same filesystem).
KEPT_DIR = Path(".snakemake/pipeline-kept")


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # a filesystem without hard links: a copy keeps the bytes too
        shutil.copy2(source, target)


def keep(paths: Iterable[str], root: Path) -> int:
    """Link every existing file of ``paths`` (relative to ``root``) aside; how many. Links a
    run killed before its end left behind are restored first."""
    restore(root)
    count = 0
    for path in paths:
        source = root / path
        if source.is_file():
            _link(source, root / KEPT_DIR / path)
            count += 1
    return count


def restore(root: Path) -> list[str]:
    """Put back every kept file that is missing now, drop the rest; the paths put back."""
    kept = root / KEPT_DIR
    if not kept.is_dir():
        return []
    restored = []
    for source in sorted(p for p in kept.rglob("*") if p.is_file()):
        path = source.relative_to(kept)
        target = root / path
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            restored.append(str(path))
    shutil.rmtree(kept)
    if restored:
        log.warning("put back %d versioned file(s) that failed jobs had removed: %s",
                    len(restored), ", ".join(restored))
    return restored
