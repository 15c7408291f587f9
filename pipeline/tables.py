"""Result tables: CSV for machines, Markdown (with conventions spelled out) for people.

Every table aggregates over ``seeds``: the CSV holds ``<metric>_mean`` and ``<metric>_std``
(sample standard deviation; empty with one seed) and ``seeds``; the Markdown shows
``mean ± std``. Rows are laid out like the paper's tables (baseline x resizer), each with the
cost of the model: parameters and GMACs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from pipeline.io import read_json, write_csv, write_text
from pipeline.runs import TASK_METRICS, Run

KEYS = ["task", "backbone", "mode"]
COST = ["params", "gmacs", "resizer_params", "resizer_conv_weights", "resizer_gmacs"]
#: Columns per table before the metrics (besides KEYS).
LAYOUT = {"main": ["family", "resizer", "input_size", "model_size", "epochs"],
          "transfer": ["resizer_from", "input_size", "model_size", "epochs"],
          "ablation": ["r", "n", "input_size", "model_size", "epochs"]}


def total_epochs(run: Run, runs: Sequence[Run]) -> int:
    """Epochs of the run plus those of the runs it started from (same seed)."""
    by_key = {(r.task, r.backbone, r.mode, r.seed): r for r in runs}
    epochs, current = run.epochs, run
    while current.init is not None:
        current = by_key[(current.init.task, current.init.backbone, current.init.mode,
                          current.seed)]
        epochs += current.epochs
    return epochs


def metrics_file(root: Path, run: Run) -> Path:
    """Where the train stage wrote the run's metrics under ``root`` (results/metrics)."""
    return root / run.task / run.backbone / run.mode / f"seed{run.seed}.json"


def read_runs(root: Path, runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run: its metrics JSON plus ``family``, ``epochs`` (total) and
    ``resizer_from``; FileNotFoundError naming the runs whose metrics are missing."""
    missing = [r.name for r in runs if not metrics_file(root, r).is_file()]
    if missing:
        raise FileNotFoundError(f"no metrics for run(s) {missing}; run their train stages first")
    rows = []
    for run in runs:
        row: dict[str, Any] = read_json(metrics_file(root, run))
        row.update(family=run.family, epochs=total_epochs(run, runs),
                   resizer_from=run.resizer_init.backbone if run.resizer_init else None)
        rows.append(row)
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame, metrics: Sequence[str], layout: Sequence[str]) -> pd.DataFrame:
    """Mean and std over seeds of each metric, per (task, backbone, mode), in first-seen order;
    the layout and cost columns (identical across seeds) are carried along."""
    keep = [c for c in [*layout, *COST] if c in frame.columns]
    groups = frame.groupby(KEYS, sort=False, dropna=False)
    out = groups[keep].first()
    for metric in metrics:
        out[f"{metric}_mean"] = groups[metric].mean()
        out[f"{metric}_std"] = groups[metric].std(ddof=1)
    out["seeds"] = groups["seed"].count()
    layout_cols = [c for c in keep if c not in COST]
    cost_cols = [c for c in keep if c in COST]
    return out.reset_index()[[*KEYS, *layout_cols,
                              *[f"{m}_{s}" for m in metrics for s in ("mean", "std")],
                              *cost_cols, "seeds"]]


def task_metrics(task: str) -> list[str]:
    """The metrics a task reports, in table order."""
    return list(TASK_METRICS[task])


def main_table(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    """Baselines, fixed-resizer fine-tunes and learned resizers of one task."""
    rows = frame[(frame["task"] == task) & frame["family"].isin(["baseline", "fixed", "learned"])]
    return summarise(rows, task_metrics(task), LAYOUT["main"]).drop(columns="task")


def transfer_table(frame: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """Per task and target backbone of ``spec`` (params' ``transfer``): its default, its own
    learned resizer (``spec['mode']``), and each resizer trained with another backbone then
    fine-tuned with it."""
    parts, mode = [], spec["mode"]
    for task in TASK_METRICS:
        for target in dict.fromkeys(p["target"] for p in spec[task]):
            mine = frame[(frame["task"] == task) & (frame["backbone"] == target)]
            chosen = mine[mine["mode"].isin(["default", mode]) | (mine["family"] == "transfer")]
            chosen = chosen.assign(resizer_from=chosen["resizer_from"].fillna(
                chosen["mode"].map({"default": "(fixed)", mode: target})))
            parts.append(summarise(chosen, task_metrics(task), LAYOUT["transfer"]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def ablation_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The r x n grid per task and backbone."""
    cells = frame[frame["family"] == "ablation"]
    parts = [summarise(cells[cells["task"] == t], task_metrics(t), LAYOUT["ablation"])
             for t in TASK_METRICS if (cells["task"] == t).any()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def cell(mean: float, std: float) -> str:
    """``mean ± std`` to 4 significant digits (mean alone with one seed)."""
    if pd.isna(mean):
        return ""
    return f"{mean:.4g}" if pd.isna(std) else f"{mean:.4g} ± {std:.2g}"


def for_people(frame: pd.DataFrame) -> pd.DataFrame:
    """``<m>_mean``/``<m>_std`` column pairs merged into one ``m`` column of ``mean ± std``;
    columns that are empty in every row dropped."""
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        if column.endswith("_std"):
            continue
        if column.endswith("_mean") and f"{column[:-5]}_std" in frame.columns:
            metric = column[:-5]
            out[metric] = [cell(m, s) for m, s in zip(frame[column], frame[f"{metric}_std"])]
        else:
            out[column] = frame[column]
    return out.dropna(axis=1, how="all")


def column_formats(frame: pd.DataFrame) -> list[str]:
    """Integers in full (parameter counts), floats to 4 significant digits."""
    return ["d" if pd.api.types.is_integer_dtype(dtype) else ".4g" for dtype in frame.dtypes]


def to_markdown(frame: pd.DataFrame, title: str, notes: Sequence[str]) -> str:
    """A GitHub-readable table with a title and one bullet per note line under it."""
    people = for_people(frame)
    rows = people.astype(object).to_dict("records")  # keep ints as ints
    body = (tabulate(rows, headers="keys", tablefmt="pipe", floatfmt=column_formats(people),
                     intfmt=",") if rows else "(no runs configured)")
    bullets = [f"- {line.strip()}" for note in notes for line in note.splitlines() if line.strip()]
    return "\n".join([f"# {title}", "", body, "", *bullets]) + "\n"


def write_table(frame: pd.DataFrame, stem: Path, title: str, notes: Sequence[str]) -> None:
    """Write ``<stem>.csv`` and ``<stem>.md``."""
    write_csv(stem.with_suffix(".csv"), frame)
    write_text(stem.with_suffix(".md"), to_markdown(frame, title, notes))


def common_notes(macs_tool: str, seeds: Sequence[int]) -> list[str]:
    """What the columns every table shares mean."""
    if len(seeds) > 1:
        spread = (f"mean ± sample standard deviation over seeds {list(seeds)} (`seeds` = runs "
                  f"averaged)")
    else:
        spread = f"one run (seed {seeds[0]}), so no spread" if seeds else "no runs configured"
    return [
        f"Each metric: {spread}; the CSV beside this file has the numbers.",
        "input_size: resolution the data pipeline resizes to; model_size: resolution the "
        "backbone sees (a learned resizer maps input_size -> model_size).",
        "epochs: total training epochs including the runs a model started from, so rows with "
        "equal epochs had equal training.",
        "params: all trainable parameters of resizer + backbone; resizer_params: the resizer's "
        "(biases and BN affine included); resizer_conv_weights: its convolution kernel weights "
        "only (the paper's convention).",
        f"gmacs, resizer_gmacs: multiply-accumulates per image in units of 1e9, counted with "
        f"{macs_tool}; a fixed (bilinear/bicubic) resizer counts as 0.",
    ]


CLASSIFICATION_NOTES = [
    "top1_err, top5_err: % error on the whole validation split (resize shorter side to "
    "input_size / eval_crop, centre crop input_size).",
    "family: baseline = fixed resizer from scratch; fixed = fixed resizer fine-tuned from "
    "default (bilinear_continued is the equal-epoch control); learned = learned resizer "
    "fine-tuned jointly with default's backbone.",
]
IQA_NOTES = [
    "On the test split: srcc_mean/plcc_mean = Spearman/Pearson correlation of predicted and "
    "human mean scores; srcc_std/plcc_std = the same for standard deviations; accuracy = "
    "binary accuracy with threshold 5 on the mean score; emd = EMD (r=2) to the human vote "
    "histograms (lower is better).",
    "family: baseline = the classification default's backbone with a 10-bin head, fine-tuned "
    "on AVA; fixed/learned fine-tune that IQA default further.",
]
TRANSFER_NOTES = [
    "resizer_from: the backbone the learned resizer was trained with before it was fine-tuned "
    "jointly with this row's backbone (from that backbone's default); (fixed) = the default "
    "fixed resizer; the row's own name = its own learned resizer.",
]
ABLATION_NOTES = [
    "r residual blocks and n filters of the learned resizer, each cell fine-tuned from the "
    "task's default like the main learned run.",
]
