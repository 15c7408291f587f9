"""One engine at a time on a tree: a Snakemake run and a DVC run refuse each other.

Both engines write the same outputs, so two of them on one tree at once interleave writes
(seen: both running the ``probe`` stage together). The two meet at DVC's repository lock,
``.dvc/tmp/lock``:

* A Snakemake run (not a dry run) takes DVC's lock for its whole life, writing ``snakemake``
  and its pid into the lock file (the workflow's ``onstart``: workflow/rules/common.smk). A
  ``dvc repro`` started meanwhile stops at once with DVC's "Unable to acquire lock" before it
  touches any output; ``make repro`` first runs this module, which names the Snakemake run.
* DVC holds its lock between stages but lets it go while a stage's command runs, so a
  Snakemake run starting up also looks for a running DVC process whose working directory is
  this tree (Linux: ``/proc``) and refuses, naming it.

The lock is the ``flock`` DVC takes (through zc.lockfile) on the same file: it ends with the
process that holds it, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import IO

from pipeline.core.errors import PipelineError

#: DVC's repository lock, relative to the repository root.
DVC_LOCK = Path(".dvc") / "tmp" / "lock"
#: What a Snakemake run writes into the lock file it holds.
SNAKEMAKE_MARK = "snakemake"
#: DVC commands that write outputs.
DVC_WRITERS = ("repro", "exp", "run", "commit", "checkout", "pull")


class EngineBusy(PipelineError):
    """The other engine is running on this tree."""


def dvc_processes(root: Path, proc: Path = Path("/proc")) -> list[tuple[int, str]]:
    """(pid, command line) of the DVC processes that write outputs and run in ``root``."""
    found, root = [], root.resolve()
    for entry in proc.glob("[0-9]*") if proc.is_dir() else []:
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        names = [Path(a).name for a in argv[:3]]
        if "dvc" not in names:
            continue
        rest = argv[names.index("dvc") + 1:]
        if rest and rest[0] in DVC_WRITERS and (cwd == root or root in cwd.parents):
            found.append((int(entry.name), " ".join(a for a in argv if a)))
    return found


def holder(root: Path) -> str:
    """What the lock file says of the process holding it ("" when unreadable)."""
    try:
        return (root / DVC_LOCK).read_text().strip()
    except OSError:
        return ""


def try_lock(root: Path) -> IO[str] | None:
    """DVC's lock file, locked (keep it open to hold the lock), or None when another process
    holds it."""
    path = root / DVC_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def hold_for_snakemake(root: Path) -> IO[str]:
    """Take DVC's lock for this Snakemake run (keep the returned file open), or raise
    EngineBusy naming the DVC run already on the tree."""
    running = [p for p in dvc_processes(root) if p[0] != os.getpid()]
    if running:
        pid, cmd = running[0]
        raise EngineBusy(f"DVC is running on this tree (pid {pid}: {cmd}); wait for it to "
                         f"finish (or stop it) before starting Snakemake here, or run "
                         f"Snakemake in another copy of the repository")
    handle = try_lock(root)
    if handle is None:
        raise EngineBusy(f"DVC holds its lock on this tree ({DVC_LOCK}: pid "
                         f"{holder(root) or 'unknown'}); wait for the DVC command to finish "
                         f"before starting Snakemake here")
    handle.seek(0)
    handle.truncate()
    handle.write(f" {os.getpid()} {SNAKEMAKE_MARK}\n")  # zc.lockfile's format, and who
    handle.flush()
    return handle


def check_for_dvc(root: Path) -> None:
    """Before ``dvc repro``: EngineBusy naming the Snakemake run that holds the tree."""
    if not (root / ".dvc").is_dir():
        return  # not a DVC repository: DVC says so
    handle = try_lock(root)
    if handle is not None:
        handle.close()
        return
    said = holder(root)
    if SNAKEMAKE_MARK in said:
        raise EngineBusy(f"Snakemake is running on this tree (pid {said.split()[0]}); wait "
                         f"for it to finish (or stop it) before `dvc repro`, or run DVC in "
                         f"another copy of the repository")
    # another DVC command holds it: DVC's own lock message says so


def main() -> int:
    """``python -m pipeline.dag.engine_lock``: exit 1, saying why, when Snakemake holds the tree."""
    try:
        check_for_dvc(Path.cwd())
    except EngineBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
