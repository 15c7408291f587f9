"""Command ``estimate``: the bill of the configured DAG before any stage runs (not a stage).

Prints, per task and family of training runs and in total, the runs, epochs, images processed
and GPU-hours, then the disk the data and checkpoints take, each line with its source
(:mod:`pipeline.report.estimate`). Reads params.yaml (or ``--params``), optionally with a preset of
``workflow/presets/`` merged in as ``apply_preset.py`` would, and checks it against the schema
and the model registries only: the datasets need not exist yet.

    python -m pipeline estimate --preset paper --gpus 8
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline.core.errors import ConfigError
from pipeline.params.config import SYNTHETIC_AVA_DIR, SYNTHETIC_IMAGENET_DIR, validate_schema
from pipeline.params.runs import all_runs, published_weights
from pipeline.report.estimate import (ANCHOR_BACKBONE, ANCHOR_SIZE, EVAL_SPEEDUP, anchor, disk_rows,
                                      family_rows, run_costs, splits)

log = logging.getLogger(__name__)

PRESETS = Path("workflow/presets")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", action="append", default=[],
                        help="merge workflow/presets/<name>.yaml first (e.g. paper); repeat to "
                             "layer several, in order (e.g. --preset paper --preset published)")
    parser.add_argument("--gpus", type=int, default=1,
                        help="GPUs the runs share, for the wall-time line (default: 1)")


def merged(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` over ``base``: mappings key by key, everything else replaced."""
    out = dict(base)
    for key, value in overlay.items():
        both = isinstance(value, Mapping) and isinstance(base.get(key), Mapping)
        out[key] = merged(base[key], value) if both else value
    return out


def read_params(path: Path, presets: list[str]) -> dict[str, Any]:
    """params (with the presets, in order) checked against the schema and the registries."""
    from pipeline.models import check_models

    params = yaml.safe_load(path.read_text())
    for preset in presets:
        file = PRESETS / f"{preset}.yaml"
        if not file.is_file():
            names = sorted(p.stem for p in PRESETS.glob("*.yaml"))
            raise ConfigError(f"no preset {preset!r} in {PRESETS}/; presets: {', '.join(names)}")
        params = merged(params, yaml.safe_load(file.read_text()))
    validate_schema(params, str(path))
    check_models(params, str(path))
    return params


def measure(num_outputs: dict[str, int]):
    """(MACs per image, trainable weights) of a run's freshly built model, cached by shape."""
    from pipeline.models.cost import count_macs, count_trainable_params
    from pipeline.training.model import new_model

    cache: dict[tuple, tuple[int, int]] = {}

    def of(run) -> tuple[int, int]:
        key = (run.task, run.backbone, run.resizer, run.input_size, run.model_size, run.r,
               run.n)
        if key not in cache:
            model = new_model(run, num_outputs[run.task])
            cache[key] = (count_macs(model, run.input_size), count_trainable_params(model))
        return cache[key]

    return of


def anchor_macs() -> int:
    """MACs per image of the anchor model (ResNet-50 at 224 px, 1000 classes)."""
    from pipeline.models import build_backbone
    from pipeline.models.cost import count_macs

    return count_macs(build_backbone(ANCHOR_BACKBONE, 1000), ANCHOR_SIZE)


def weights_lines(params: Mapping[str, Any]) -> list[str]:
    """Which backbones start from published weights and what their baselines train (none:
    every baseline from scratch)."""
    published = {b: published_weights(params, b) for b in params["classification"]["backbones"]}
    chosen = {b: source for b, source in published.items() if source}
    if not chosen:
        return ["weights: every backbone from scratch (classification.weights)"]
    scratch = [b for b, source in published.items() if not source]
    plan = params["train"]["pretrained"]
    return [f"weights: published for {', '.join(f'{b} ({s})' for b, s in chosen.items())}; "
            f"their baselines train {plan['epochs']} epoch(s) from them (train.pretrained)"
            + (f"; from scratch: {', '.join(scratch)}" if scratch else "")]


def gigabytes(size: int | None) -> str:
    """Decimal gigabytes to 0.1, or ``?`` when unknown."""
    return "?" if size is None else f"{size / 1e9:,.1f}"


def text(rows: list[dict[str, Any]], disk: list[dict[str, Any]], sources: list[str],
         gpus: int) -> str:
    """The bill as Markdown tables and the sources of its numbers."""
    lines = ["| task | family | runs | epochs | images | GPU-hours |",
             "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['task']} | {r['family']} | {r['runs']:,} | {r['epochs']:,} | "
              f"{r['images']:,} | {r['gpu_hours']:,.2f} |" for r in rows]
    total = rows[-1]["gpu_hours"]
    lines += ["", f"Wall time on {gpus} GPU(s), runs spread evenly: about "
                  f"{total / gpus:,.1f} hours.", "", "| disk | GB | source |", "|---|---:|---|"]
    lines += [f"| {d['what']} | {gigabytes(d['bytes'])} | {d['source']} |" for d in disk]
    return "\n".join([*lines, "", "Sources:", *(f"- {s}" for s in sources)])


def main(args: argparse.Namespace) -> int:
    params = read_params(args.params, args.preset)
    synthetic = {"classification": params["data"]["imagenet"]["root"] == SYNTHETIC_IMAGENET_DIR,
                 "iqa": params["data"]["ava"]["root"] == SYNTHETIC_AVA_DIR}
    task_splits = splits(params, synthetic)
    base = anchor()
    classes = (params["synthetic"]["imagenet"]["classes"] if synthetic["classification"]
               else 1000)
    from pipeline.training.iqa import BINS

    runs = all_runs(params)
    costs = run_costs(runs, task_splits, base, measure(
        {"classification": classes, "iqa": BINS,
         "attenuated": params["synthetic"]["imagenet"]["classes"]}), anchor_macs())
    sources = [f"rate: {base.source}; each run's rate scaled by the anchor's MACs per image "
               f"over its own (optimistic for depthwise models; decoding not counted); "
               f"evaluation {EVAL_SPEEDUP:g}x faster per image than training",
               *(f"{task} images per epoch: {s.train:,} train + {s.eval:,} evaluated "
                 f"({s.source})" for task, s in task_splits.items()
                 if any(run.task == task for run in runs)),
               *weights_lines(params)]
    print(text(family_rows(costs), disk_rows(params, synthetic, costs), sources, args.gpus))
    return 0
