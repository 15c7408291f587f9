"""``python -m pipeline <stage>``: every stage is a sub-command with explicit paths.

Each module of ``pipeline.stages`` is a sub-command (its docstring is the help); only the chosen
one is imported. What a stage's run depends on is the import closure of its module
(:mod:`pipeline.dag.codehash`), hashed into its digest by the ``plan`` stage.
"""

from __future__ import annotations

import argparse
import ast
import atexit
import importlib
import logging
import os
import re
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TextIO

from pipeline.core.errors import Interrupted, PipelineError

STAGES_DIR = Path(__file__).resolve().parent / "stages"

log = logging.getLogger("pipeline")


def commands() -> dict[str, Path]:
    """Sub-command -> file of its module: one per module of ``pipeline.stages``."""
    return {path.stem.replace("_", "-"): path for path in sorted(STAGES_DIR.glob("*.py"))
            if path.stem != "__init__"}


def summary(path: Path) -> str:
    """A stage module's one-line help: the first paragraph of its docstring (read, not
    imported, so that ``--help`` costs no import of torch)."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    return re.sub(r"^Stage ``[\w-]+``: ", "", first)


def stage_module(name: str) -> ModuleType:
    """Import the module implementing sub-command ``name``."""
    return importlib.import_module(f"pipeline.stages.{name.replace('-', '_')}")


def build_parser(selected: str | None) -> argparse.ArgumentParser:
    """Parser with every sub-command; only ``selected``'s arguments are loaded."""
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name, path in commands().items():
        line = summary(path)
        stage = sub.add_parser(name, help=line, description=line)
        stage.add_argument("--params", type=Path, default=Path("params.yaml"),
                           help="params file (default: params.yaml)")
        stage.add_argument("--log-file", dest="log", type=Path,
                           help="also write the log to this file (not `--log`, which torchrun's "
                                "parser takes for an ambiguous prefix of its own options)")
        if name == selected:
            stage_module(name).add_arguments(stage)
    return parser


class LinePerUpdate:
    """stderr for a reader that is not a terminal (a log file, Snakemake's or SLURM's job log):
    each redraw of a progress bar (tqdm ends it with a carriage return) becomes a line of its
    own, and blank redraws are dropped, instead of thousands of characters on one line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.pending = stream, ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).replace("\r", "\n").split("\n")
        kept = [line for line in lines if line.strip()]
        if kept:
            self.stream.write("\n".join(kept) + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def close_line(self) -> None:
        """Write what is left of an unfinished line (at exit)."""
        try:
            if self.pending.strip():
                self.stream.write(self.pending + "\n")
            self.stream.flush()
        except ValueError:  # the stream was closed first
            pass
        self.pending = ""

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def line_per_update_stderr() -> None:
    """Route sys.stderr through :class:`LinePerUpdate` when it is not a terminal."""
    if not isinstance(sys.stderr, LinePerUpdate) and not sys.stderr.isatty():
        sys.stderr = LinePerUpdate(sys.stderr)
        atexit.register(sys.stderr.close_line)


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def runnable_others(samples: int = 5, interval: float = 0.01) -> int:
    """Other processes' threads running or ready to run now: the median over a few samples
    of /proc/loadavg's running count, this process excluded (``-1`` where there is none)."""
    counts = []
    for k in range(samples):
        try:
            counts.append(int(Path("/proc/loadavg").read_text().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            return -1
        if k + 1 < samples:
            time.sleep(interval)
    return sorted(counts)[len(counts) // 2]


def choose_omp_wait_policy(env: dict[str, str] | None = None,
                           others: int | None = None) -> str | None:
    """Make OpenMP's idle threads sleep (``OMP_WAIT_POLICY=PASSIVE``) when the machine is
    already busy: at least as many other threads running or ready to run as it has usable
    cores (``others``: that count, default :func:`runnable_others`). Call it before torch is
    imported (libgomp reads the variable once, when it loads); returns the policy set.

    Measured on 2 cores, resnet_tiny / MobileNetV2-0.5 training at 2 intra-op threads: on an
    idle machine GNU OpenMP's default (threads spin between parallel regions) ran at 1340 /
    636 images/s and PASSIVE at 798 / 304; beside 8 busy processes the default collapsed to
    26 / 11 images/s while PASSIVE kept 130 / 58. No spin count was good at both
    (``GOMP_SPINCOUNT`` 3000: 866 idle, 121 loaded; 30000: 1269 and 46). The policy never
    changes a result: outputs were byte-identical under all of them. The instantaneous count
    decides, not the load average: a minute's average still counts the stage that just ended.
    A policy the user set (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``) is left alone.
    """
    env = os.environ if env is None else env
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return None
    if (runnable_others() if others is None else others) >= usable_cores():
        env["OMP_WAIT_POLICY"] = "PASSIVE"
        return "PASSIVE"
    return None


def setup_logging(verbose: bool, log_file: Path | None) -> None:
    """Log to stderr, and to ``log_file`` too when given."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


def process_age() -> float | None:
    """Seconds since this process started (Linux's /proc; ``None`` elsewhere)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    """User + system CPU seconds of this process, all threads, and of its reaped children, to
    the microsecond (``os.times`` counts clock ticks: too coarse for a benchmark's pass)."""
    own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime


#: The log line every finished stage ends with; workflow/scripts/stage_times.py reads it.
TIMING = "stage timing:"


def timing_line(startup_wall: float | None, startup_cpu: float, started: float) -> str:
    """``TIMING`` and key=value seconds: the whole process's wall and CPU (its finished
    children included), how much of each went to start-up (the interpreter and the stage's
    imports, until its arguments were parsed) and how long its loops waited for batches."""
    loaders = sys.modules.get("pipeline.loaders.common")  # never imported here: it needs torch
    age = process_age()
    wall = age if age is not None else time.perf_counter() - started
    fields = {"wall_s": wall, "startup_wall_s": startup_wall if startup_wall is not None
              else float("nan"), "cpu_s": cpu_seconds(), "startup_cpu_s": startup_cpu,
              "data_wall_s": loaders.Waited.seconds if loaders else 0.0}
    return TIMING + " " + " ".join(f"{k}={v:.2f}" for k, v in fields.items())


def main(argv: Sequence[str] | None = None) -> int:
    """Run one stage; configuration, data, checkpoint, device and full-disk errors exit 2 with
    one clear message."""
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if a in commands()), None)
    args = build_parser(selected).parse_args(argv)
    startup_wall, startup_cpu, started = process_age(), cpu_seconds(), time.perf_counter()
    loaders = sys.modules.get("pipeline.loaders.common")
    if loaders:  # this stage's own waits only (a test may call several stages in one process)
        loaders.Waited.seconds = 0.0
    setup_logging(args.verbose, args.log)
    try:
        status = stage_module(args.stage).main(args) or 0
    except Interrupted as exc:
        log.error("%s", exc)
        return 130
    except KeyboardInterrupt:
        log.error("interrupted; outputs are written whole or not at all, so nothing half-done "
                  "is left and a rerun starts %s again", args.stage)
        return 130
    except PipelineError as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        from pipeline.core.io import disk_full_message, is_disk_full  # only needed on this path

        if not is_disk_full(exc):
            raise
        log.error("%s", disk_full_message(exc, getattr(args, "out", None) or Path.cwd()))
        return 2
    log.info("%s", timing_line(startup_wall, startup_cpu, started))
    return status
