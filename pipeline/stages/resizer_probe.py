"""Stage ``resizer-probe``: is the fine cue still in what each trained resizer hands on?

The validity probe (:mod:`pipeline.data.probe`) asks whether the cue is readable at the model size
after the default resize (it must not be) and at the resizer's input size (it must be). This
stage asks the same of every finished classification run that resizes inside its model
(learned, joint and in-model fixed resizers), in both regimes of the benchmark (column
``regime``, each on its own set): the linear probe is fit on the resizer's
outputs for train images and scored on its outputs for validation images, next to the same
probe on the inputs themselves and on their antialiased and plain bilinear resizes. A learned
resizer whose output carries the cue but whose model does not use it fails in the backbone;
one whose output does not carry it fails in the resizer.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from pipeline.core.manifests import read_manifest
from pipeline.data.probe import majority_error, probe_error, spectral_features
from pipeline.data.synth_imagenet import FINE_CUES, fine_cue_of
from pipeline.loaders.transforms import normalize
from pipeline.params.config import load_params
from pipeline.params.runs import MANIFESTS, REGIMES, Run, all_runs
from pipeline.report.tables import write_table
from pipeline.report.trained import checkpoint_of_run, eval_batches, resizing_runs, trained_resizer
from pipeline.stages.probe import embedded_set, sample
from pipeline.training.diagnostics import reference_resizers

log = logging.getLogger(__name__)
Resize = Callable[[torch.Tensor], torch.Tensor]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=Path, required=True, help="data/runs (checkpoints)")
    parser.add_argument("--out", type=Path, required=True, help="output stem (no suffix)")


@torch.no_grad()
def probe_features(run: Run, manifest: pd.DataFrame, params: dict[str, Any],
                   resizers: dict[str, Resize]) -> dict[str, torch.Tensor]:
    """Probe features of each resizer's outputs for ``manifest``'s images (the run's eval
    pipeline at its input size)."""
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in resizers}
    for images, _ in eval_batches(run, manifest, params):
        for name, resize in resizers.items():
            parts[name].append(spectral_features(resize(normalize(images))))
    return {name: torch.cat(chunks) for name, chunks in parts.items()}


def rows_for(run: Run, splits: list[pd.DataFrame], params: dict[str, Any],
             resizers: dict[str, Resize], target: Callable, classes: int) -> list[dict]:
    """One row per resizer: the probe's error for ``target`` on its outputs."""
    train, test = (probe_features(run, m, params, resizers) for m in splits)
    labels = [target(torch.tensor(m["label"].to_numpy())) for m in splits]
    chance = majority_error(labels[1], classes)
    rows = []
    for name in resizers:
        error = probe_error((train[name], labels[0]), (test[name], labels[1]), classes)
        rows.append({"probe_error_pct": round(100 * error, 2),
                     "chance_error_pct": round(100 * chance, 2),
                     "share_of_chance": round(error / chance, 3) if chance else None,
                     "resizer_output": name})
    return rows


def regime_rows(task: str, runs: list[Run], params: dict[str, Any], runs_root: Path,
                target: tuple[Callable, int, str]) -> list[dict]:
    """The rows of one classification task's resizing runs (its regime's data set): the
    references once per input size, then each run's trained resizer."""
    manifests = Path(MANIFESTS[task])
    splits = [sample(read_manifest(manifests, s), params["probe"]["max_images"],
                     params["seed"]) for s in ("train", "val")]
    rows, references = [], set()
    for run in resizing_runs(runs, task):
        resizers: dict[str, Resize] = {}
        if run.input_size not in references:  # the references once per input size
            references.add(run.input_size)
            resizers = {f"input itself ({run.input_size} px)": lambda x: x,
                        **{f"{name} ({run.model_size} px)": r for name, r in
                           reference_resizers(run.model_size).items()}}
        resizers[f"{run.backbone} {run.mode} ({run.model_size} px)"] = trained_resizer(
            run, checkpoint_of_run(runs_root, run), manifests)
        found = rows_for(run, splits, params, resizers, *target[:2])
        for row in found:
            reference = not row["resizer_output"].startswith(f"{run.backbone} {run.mode} ")
            row.update(regime=REGIMES[task], backbone="" if reference else run.backbone,
                       mode="" if reference else run.mode, family="" if reference else run.family,
                       seed="" if reference else str(run.seed))
            log.info("%s, %s: %s probe error %.1f%%", REGIMES[task], row["resizer_output"],
                     target[2], row["probe_error_pct"])
        rows += found
    return rows


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    synthetic = embedded_set(params, "classification")
    cue = (fine_cue_of, len(FINE_CUES), "fine cue")
    classes = len(read_manifest(Path(MANIFESTS["classification"]), "classes"))
    runs, rows = all_runs(params), []
    for task in REGIMES:
        target = cue if embedded_set(params, task) else (lambda y: y, classes, "class")
        rows += regime_rows(task, runs, params, args.runs, target)
    columns = ["regime", "resizer_output", "backbone", "mode", "family", "seed",
               "probe_error_pct", "chance_error_pct", "share_of_chance"]
    what = cue[2] if synthetic else "fine cue (second regime) or class"
    write_table(pd.DataFrame(rows, columns=columns), args.out,
                f"Is the {what} still in what each resizer hands to its backbone?",
                notes(what, params))


def notes(what: str, params: dict[str, Any]) -> list[str]:
    """What the resizer-probe table's columns mean."""
    return [
        f"The validity probe (see probe.md) on resizer outputs: fit on the outputs for at most "
        f"{params['probe']['max_images']} train images, scored on the outputs for validation "
        f"images, for the {what}; eval pipeline at the run's input size.",
        "regime: the benchmark regime of the run, each probed on its own set (removed: the "
        "classification set; attenuated: the second regime's, synthetic.attenuated, whose fine "
        "cue the default attenuates but keeps: probe_attenuated.md).",
        "input itself: the probe on the resizer's input (what there is to carry); "
        "bilinear_aa: the antialiased resize to the model size (the default pipeline); "
        "bilinear_noaa: the plain bilinear resize (the learned resizer's skip).",
        "share of chance: probe error / chance error (1: nothing readable, 0: perfect). A "
        "learned resizer whose output the probe reads better than its skip's carries the cue; "
        "whether its backbone uses it is in classification.md.",
    ]
