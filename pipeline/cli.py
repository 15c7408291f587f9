"""``python -m pipeline <stage>``: every stage is a sub-command with explicit paths.

Each module of ``pipeline.stages`` is a sub-command (its docstring is the help); only the chosen
one is imported. What a stage's run depends on is the import closure of its module
(:mod:`pipeline.codehash`), hashed into its digest by the ``plan`` stage.
"""

from __future__ import annotations

import argparse
import ast
import atexit
import importlib
import logging
import re
import sys
from collections.abc import Sequence
from typing import TextIO
from pathlib import Path
from types import ModuleType

from pipeline.errors import Interrupted, PipelineError

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


def setup_logging(verbose: bool, log_file: Path | None) -> None:
    """Log to stderr, and to ``log_file`` too when given."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one stage; configuration, data, checkpoint, device and full-disk errors exit 2 with
    one clear message."""
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if a in commands()), None)
    args = build_parser(selected).parse_args(argv)
    setup_logging(args.verbose, args.log)
    try:
        stage_module(args.stage).main(args)
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
        from pipeline.io import disk_full_message, is_disk_full  # only needed on this path

        if not is_disk_full(exc):
            raise
        log.error("%s", disk_full_message(exc, getattr(args, "out", None) or Path.cwd()))
        return 2
    return 0
