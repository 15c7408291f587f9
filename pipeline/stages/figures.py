"""Stage ``figures``: results/figures/ from the tables, the runs' histories and checkpoints.

cost_<task>.png: each backbone's metric against GMACs for every resizer mode (± 1 standard
error); examples.png: input, the task's default resize, learned and their residual for each
learned run of ``figures.seed``; ablation_<task>.png: the r x n grid; training_curves.png:
train loss and the tables' metric per cumulative epoch of every main run (mean over seeds).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from pipeline.core.noise import chance_error
from pipeline.params.config import load_params
from pipeline.params.families import EXAMPLES
from pipeline.params.runs import (CHECKPOINT, GRID_TASKS, HISTORY, MAIN_FAMILIES, MANIFESTS,
                                  PRIMARY_METRIC, REGIMES, TASK_METRICS, all_runs, run_path)
from pipeline.report.curves import CURVES
from pipeline.report.examples import examples_for, responses_for
from pipeline.report.figures import (plot_ablation_heatmaps, plot_cost_curves, plot_example_grid,
                                     plot_frequency_response, plot_message, plot_training_curves)
from pipeline.report.tables import total_epochs
from pipeline.report.trained import resizing_runs
from pipeline.training.tasks import get_task

log = logging.getLogger(__name__)
LABELS = {"top1_err": "top-1 error (%)", "srcc_mean": "SRCC of mean scores"}
#: Per task, the validation column of history.csv that the tables report, and its label.
TABLE_CURVES = {task: curves[0] for task, curves in CURVES.items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tables", type=Path, required=True, help="the tables stage's folder")
    parser.add_argument("--runs", type=Path, required=True, help="data/runs (checkpoints)")
    parser.add_argument("--out", type=Path, required=True, help="directory for the PNGs")


def histories(runs_root: Path, runs) -> pd.DataFrame:
    """Every main run's history.csv with its task, backbone, mode, seed and ``start``: the
    epochs of the runs it continues (so curves run on cumulative epochs)."""
    frames = [pd.read_csv(runs_root / run_path(*r.coordinates) / HISTORY)
              .assign(task=r.task, backbone=r.backbone, mode=r.mode, seed=r.seed,
                      start=total_epochs(r, runs) - r.epochs)
              for r in runs if r.family in MAIN_FAMILIES]
    return pd.concat(frames, ignore_index=True)


#: Validation images the frequency responses are measured on.
RESPONSE_IMAGES = 64


def plot_responses(runs, args: argparse.Namespace, params: dict) -> None:
    """resizer_response.png: every classification run of ``figures.seed`` that resizes
    inside the model (learned, joint, in-model fixed resizers) at the most common input size."""
    resizing = [r for r in resizing_runs(runs) if r.seed == params["figures"]["seed"]]
    path = args.out / "resizer_response.png"
    if not resizing:
        plot_message("No classification run resizes inside its model.", path)
        return
    size = pd.Series([r.input_size for r in resizing]).mode()[0]
    shown = [r for r in resizing if r.input_size == size]
    plot_frequency_response(responses_for(shown, args.runs, params, RESPONSE_IMAGES),
                            shown[0].model_size, size, path)


def chance_level(task: str) -> float:
    """The primary metric of a guess: a uniform top-1 error, or an SRCC of 0."""
    if get_task(task).name == "classification":
        return chance_error(get_task(task).num_outputs(Path(MANIFESTS[task])))
    return 0.0


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    runs = all_runs(params)
    house = list(dict.fromkeys(r.mode for r in runs if r.family in MAIN_FAMILIES))
    for task in GRID_TASKS:
        metric = PRIMARY_METRIC[task]
        better = "lower" if TASK_METRICS[task][metric] < 0 else "higher"
        table = pd.read_csv(args.tables / f"{task}.csv")
        if "regime" in table.columns:  # the first regime's rows
            table = table[table["regime"] == REGIMES[task]]
        plot_cost_curves(table, metric, LABELS[metric], args.out / f"cost_{task}.png", better,
                         house, chance_level(task))
        path = args.out / f"ablation_{task}.png"
        if params["ablation"][task]:
            ablation = pd.read_csv(args.tables / "ablation.csv")
            plot_ablation_heatmaps(ablation[ablation["task"] == task], metric, LABELS[metric],
                                   path)
        else:
            plot_message(f"No {task} ablation: list backbones in ablation.{task} (params.yaml).",
                         path)
    shown = [r for r in runs if r.family in EXAMPLES and r.trains_resizer
             and r.seed == params["figures"]["seed"]]
    examples = [ex for r in shown for ex in examples_for(
        r, args.runs / run_path(*r.coordinates) / CHECKPOINT,
        Path(MANIFESTS[r.task]), params, params["figures"]["examples"],
        f"{r.task} · {r.backbone} · {r.mode}")]
    plot_example_grid(examples, args.out / "examples.png")
    plot_training_curves(histories(args.runs, runs), args.out / "training_curves.png",
                         TABLE_CURVES, house)
    plot_responses(runs, args, params)
    log.info("figures written to %s", args.out)
