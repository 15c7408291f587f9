"""``python -m pipeline <stage>``: every stage is a sub-command with explicit paths.

Only the chosen stage's module is imported, so a stage's code (what the engines track as its
dependencies) is exactly its import closure.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from pipeline.errors import PipelineError

#: Sub-command -> (module under pipeline.stages, one-line help), in DAG order.
STAGES: dict[str, tuple[str, str]] = {
    "synth-imagenet": ("synth_imagenet",
                       "write the synthetic classification set in ImageNet's extracted layout"),
    "prepare-imagenet": ("prepare_imagenet",
                         "build train/val manifests and the class list from data.imagenet.root"),
    "synth-ava": ("synth_ava",
                  "write the synthetic IQA set in AVA's layout (ratings follow fine detail)"),
    "prepare-ava": ("prepare_ava",
                    "build checked AVA train/test manifests (vote histograms) from data.ava"),
    "preresize": ("preresize",
                  "copy a prepared dataset's images with a bounded shorter side (optional)"),
    "probe": ("probe", "validity gate: can a linear probe read the fine cue at the model size "
                       "(it must not) and at the resizer's input size (it must)?"),
    "resizer-params": ("resizer_params",
                       "write the resizer size table (r x n; conv weights, trainable params)"),
    "train": ("train", "train and evaluate one run of either task (classification, iqa): "
                       "baseline, fixed or learned resizer, transfer or ablation cell"),
    "resizer-probe": ("resizer_probe", "the validity probe on every trained resizer's outputs: "
                                       "is the fine cue still there?"),
    "tables": ("tables", "aggregate per-run metrics over seeds into the classification, iqa, "
                         "transfer and ablation tables"),
    "figures": ("figures", "draw cost curves, example grids, ablation heatmaps and training "
                           "curves from the tables and runs"),
    "bench-loaders": ("bench_loaders",
                      "benchmark the loaders (torch, DALI CPU/GPU) against JPEG decoding"),
}

log = logging.getLogger("pipeline")


def stage_module(name: str) -> ModuleType:
    """Import the module implementing sub-command ``name``."""
    return importlib.import_module(f"pipeline.stages.{STAGES[name][0]}")


def build_parser(selected: str | None) -> argparse.ArgumentParser:
    """Parser with every sub-command; only ``selected``'s arguments are loaded."""
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name, (_, help_text) in STAGES.items():
        stage = sub.add_parser(name, help=help_text, description=help_text)
        stage.add_argument("--params", type=Path, default=Path("params.yaml"),
                           help="params file (default: params.yaml)")
        stage.add_argument("--log", type=Path, help="also write the log to this file")
        if name == selected:
            stage_module(name).add_arguments(stage)
    return parser


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
    selected = next((a for a in argv if a in STAGES), None)
    args = build_parser(selected).parse_args(argv)
    setup_logging(args.verbose, args.log)
    try:
        stage_module(args.stage).main(args)
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
