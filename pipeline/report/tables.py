"""Result tables: CSV for machines, Markdown for people (:mod:`pipeline.report.table_format`).

Every table aggregates over ``seeds``: the CSV holds ``<metric>_mean`` and ``<metric>_std``
(sample standard deviation; empty with one seed) and ``seeds``; the Markdown shows
``mean ± std``. Rows are laid out like the paper's tables (baseline x resizer), each with the
cost of the model: parameters and GMACs.

The main tables also carry the noise that decides what a difference means
(:mod:`pipeline.core.noise`): the per-run standard error of the primary metric from the number of
test images, each row's difference to its backbone's ``default`` with the standard error of
that difference (``≈`` in the Markdown when it is within two), the share of the gap between
``default`` and the fixed resizer at the row's input size that a resizing row recovers, and
each row's health (:func:`pipeline.training.diagnostics.health`): a diverged or at-chance row is
marked and no difference is computed against it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.core.io import read_json, write_csv, write_text
from pipeline.core.noise import correlation_se, error_se, mean_se, resolved
from pipeline.params.runs import (BASELINE_MODE, GRID_TASKS, MAIN_FAMILIES, PRIMARY_METRIC, REGIMES,
                                  TASK_KIND, TASK_METRICS, Run, run_path)
from pipeline.report.table_format import (CONTROL_DELTA, DEFAULT_DELTA, OWN_DELTA, html_page, page,
                                          worded)

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
    return root / f"{run_path(*run.coordinates)}.json"


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


def run_se(task: str, value: float, images: int) -> float:
    """Standard error of one run's primary metric from its number of test images."""
    if TASK_KIND[task] == "classification":
        return error_se(value, images)
    return correlation_se(value, images)


def health_of(runs: pd.DataFrame) -> str:
    """``ok`` when every seed's run is healthy, else each problem with its seeds."""
    if "health" not in runs.columns:
        return "ok"
    bad = runs[runs["health"] != "ok"]
    if bad.empty:
        return "ok"
    return "; ".join(f"{status} (seed {', '.join(map(str, group['seed']))})"
                     for status, group in bad.groupby("health", sort=True))


def run_noise(frame: pd.DataFrame, table: pd.DataFrame, task: str) -> pd.DataFrame:
    """The table with ``health`` (every seed's) and ``<primary>_se`` (the mean per-run
    standard error from the number of test images), per (backbone, mode) of ``task``."""
    metric = PRIMARY_METRIC[task]
    runs = frame[frame["task"] == task]
    runs = runs.assign(se=[run_se(task, v, n) for v, n in zip(runs[metric], runs["test_images"])])
    keyed = runs.groupby(["backbone", "mode"], sort=False)
    groups = [keyed.get_group((b, m)) for b, m in zip(table["backbone"], table["mode"])]
    return table.assign(health=[health_of(g) for g in groups],
                        **{f"{metric}_se": [g["se"].mean() for g in groups]})


def with_mean_se(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The table with ``mean_se``, each row's standard error of its mean over seeds."""
    return table.assign(mean_se=[mean_se(std, se, k) for std, se, k in
                                 zip(table[f"{metric}_std"], table[f"{metric}_se"],
                                     table["seeds"])])


def add_deltas(table: pd.DataFrame, metric: str,
               ref_mode: str | Callable[[pd.DataFrame, pd.Series], str | None],
               columns: tuple[str, str, str]) -> pd.DataFrame:
    """The table (with ``mean_se``) with ``columns`` (difference, its s.e., resolved) of each
    row against its backbone's ``ref_mode`` row (:func:`delta_vs`); ``ref_mode`` may instead
    give each row's reference mode (None: no difference for that row)."""
    refs = [ref_mode(table, row) if callable(ref_mode) else ref_mode
            for _, row in table.iterrows()]
    deltas = [delta_vs(table, row, metric, ref) if ref else (None, None, None)
              for (_, row), ref in zip(table.iterrows(), refs)]
    return table.assign(**{name: [d[k] for d in deltas] for k, name in enumerate(columns)})



def warm_control(table: pd.DataFrame, row: pd.Series) -> str | None:
    """A warm-started learned row's equal-epoch control: the warm row of the same backbone
    whose resizer has no trainable parameters (the source baseline's own resizer, continued
    as long); None for every other row."""
    if row["family"] != "warm" or not row.get("resizer_params"):
        return None
    hit = table[(table["backbone"] == row["backbone"]) & (table["family"] == "warm")
                & (table["resizer_params"] == 0)]
    return None if hit.empty else hit.iloc[0]["mode"]


def noise_columns(frame: pd.DataFrame, table: pd.DataFrame, task: str) -> pd.DataFrame:
    """:func:`run_noise`, then ``delta_vs_default`` / ``delta_se`` / ``delta_resolved``, the
    same against a warm start's control (:data:`CONTROL_DELTA`) and ``gap_recovered``."""
    metric = PRIMARY_METRIC[task]
    table = add_deltas(with_mean_se(run_noise(frame, table, task), metric), metric,
                       BASELINE_MODE, DEFAULT_DELTA)
    table = add_deltas(table, metric, warm_control, CONTROL_DELTA)
    table["gap_recovered"] = [gap_recovered(table, row, metric) for _, row in table.iterrows()]
    return table.drop(columns="mean_se")


def _row(table: pd.DataFrame, backbone: str, **match: Any) -> pd.Series | None:
    """The table's row of ``backbone`` whose columns equal ``match`` (None if none)."""
    hit = table[table["backbone"] == backbone]
    for column, value in match.items():
        hit = hit[hit[column] == value]
    return None if hit.empty else hit.iloc[0]


def delta_vs(table: pd.DataFrame, row: pd.Series, metric: str, ref_mode: str = BASELINE_MODE
             ) -> tuple[float | None, float | None, bool | None]:
    """(row - its backbone's ``ref_mode`` row, its standard error, whether it exceeds two)
    for the primary metric; None where the row is that row, it is missing or either is
    unhealthy."""
    base = _row(table, row["backbone"], mode=ref_mode)
    if base is None or row["mode"] == ref_mode or "ok" != row["health"] or \
            base["health"] != "ok":
        return None, None, None
    diff = row[f"{metric}_mean"] - base[f"{metric}_mean"]
    se = float(pd.Series([row["mean_se"], base["mean_se"]]).pow(2).sum() ** 0.5)
    return round(diff, 4), round(se, 4), resolved(diff, row["mean_se"], base["mean_se"])


def gap_recovered(table: pd.DataFrame, row: pd.Series, metric: str) -> float | None:
    """For a row that resizes inside the model (model_size < input_size): the share of the
    gap between ``default`` and the default's resizer at the row's input size that the row
    closes (1: all of it, 0: none, negative: worse than default); None otherwise."""
    if row["model_size"] >= row["input_size"] or row["health"] != "ok":
        return None
    base = _row(table, row["backbone"], mode=BASELINE_MODE)
    if base is None:
        return None
    ref = _row(table, row["backbone"], family="baseline", resizer=base["resizer"],
               input_size=row["input_size"], model_size=row["input_size"])
    if ref is None or base["health"] != "ok" or ref["health"] != "ok":
        return None
    gap = base[f"{metric}_mean"] - ref[f"{metric}_mean"]
    if not resolved(gap, base["mean_se"], ref["mean_se"]):
        return None  # no resolved gap to recover: a share of noise means nothing
    return round((base[f"{metric}_mean"] - row[f"{metric}_mean"]) / gap, 4)


def main_table(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    """Baselines, fixed-resizer fine-tunes, learned, joint and warm-started resizers of one
    task, with the noise columns of :func:`noise_columns`."""
    rows = frame[(frame["task"] == task)
                 & frame["family"].isin(MAIN_FAMILIES)]
    table = summarise(rows, task_metrics(task), LAYOUT["main"]).drop(columns="task")
    if table.empty:
        return table
    table = noise_columns(rows, table, task)
    tail = [c for c in (*COST, "seeds") if c in table.columns]
    return table[[c for c in table.columns if c not in tail] + tail]


def regimes_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The classification tasks' main tables stacked, each row named by its benchmark regime
    (column ``regime``, first: :data:`pipeline.params.runs.REGIMES`)."""
    parts = []
    for task, regime in REGIMES.items():
        table = main_table(frame, task)
        if not table.empty:
            table.insert(0, "regime", regime)
            parts.append(table)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def by_regime(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Task -> its rows of :func:`regimes_table`'s table (the tasks that have rows)."""
    if table.empty:
        return {}
    return {task: rows.drop(columns="regime").reset_index(drop=True)
            for task, regime in REGIMES.items()
            if not (rows := table[table["regime"] == regime]).empty}


DIAGNOSTICS = ["diag_hf_transfer", "diag_hf_transfer_bilinear_aa",
               "diag_hf_transfer_bilinear_noaa", "diag_residual_peak", "diag_residual_rms",
               "diag_skip_rms", "diag_residual_to_skip"]


def diagnostics_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of each resizing run's diagnostics (``diag_*``), with its family."""
    present = [c for c in DIAGNOSTICS if c in frame.columns]
    if not present:
        return pd.DataFrame()
    rows = frame[frame[present[0]].notna()]
    groups = rows.groupby(KEYS, sort=False)
    out = groups[["family", "resizer", "input_size", "model_size"]].first()
    for column in present:
        out[column.removeprefix("diag_")] = groups[column].mean()
    out["seeds"] = groups["seed"].count()
    return out.reset_index()


def transfer_table(frame: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """Per task and target backbone of ``spec`` (params' ``transfer``): its default, its own
    learned resizer (``spec['mode']``), and each resizer trained with another backbone then
    fine-tuned with it, each row's difference to the target's default and to its own learned
    resizer (columns :data:`DEFAULT_DELTA`, :data:`OWN_DELTA`)."""
    parts, mode = [], spec["mode"]
    for task in GRID_TASKS:
        for target in dict.fromkeys(p["target"] for p in spec[task]):
            mine = frame[(frame["task"] == task) & (frame["backbone"] == target)]
            chosen = mine[mine["mode"].isin(["default", mode]) | (mine["family"] == "transfer")]
            chosen = chosen.assign(resizer_from=chosen["resizer_from"].fillna(
                chosen["mode"].map({"default": "(fixed)", mode: target})))
            metric = PRIMARY_METRIC[task]
            table = with_mean_se(run_noise(chosen, summarise(chosen, task_metrics(task),
                                                             LAYOUT["transfer"]), task), metric)
            table = add_deltas(add_deltas(table, metric, BASELINE_MODE, DEFAULT_DELTA), metric,
                               mode, OWN_DELTA)
            parts.append(table.drop(columns="mean_se"))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def ablation_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The r x n grid per task and backbone."""
    cells = frame[frame["family"] == "ablation"]
    parts = [run_noise(cells, summarise(cells[cells["task"] == t], task_metrics(t),
                                        LAYOUT["ablation"]), t)
             for t in GRID_TASKS if (cells["task"] == t).any()]
    if not parts:
        return pd.DataFrame()
    # r and n are integers; the runs' column also holds the fixed resizers' empty ones
    return pd.concat(parts, ignore_index=True).astype({"r": int, "n": int})


#: Short names of each task's headline numbers: (primary metric, gap recovered).
HEADLINE_KEYS = {"classification": ("top1", "gap"), "iqa": ("srcc", "iqa_gap"),
                 "attenuated": ("top1_attenuated", "gap_attenuated")}


def headline(tables: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, float]]:
    """The numbers experiments are compared by (``dvc exp show``, ``dvc metrics diff``): per
    task, its primary metric's mean over seeds (``top1`` %, ``srcc``) and, where defined, the
    share of the gap a mode recovers (``gap``, classification; ``iqa_gap``), each first per
    mode as the mean over backbones (key ``<mode>``: a handful of short columns that fit a
    terminal), then per ``<backbone>/<mode>`` (every table number; ``--drop '.*/'`` hides them).
    Numbers only; empty cells are left out."""
    out: dict[str, dict[str, float]] = {}
    for task, table in tables.items():
        if table.empty:
            continue
        metric, gap = HEADLINE_KEYS[task]
        for name, column in ((metric, f"{PRIMARY_METRIC[task]}_mean"), (gap, "gap_recovered")):
            values = headline_values(table, column)
            if values:
                out[name] = values
    return out


def headline_values(table: pd.DataFrame, column: str) -> dict[str, float]:
    """``column``'s defined values: the mean over backbones per mode, then per backbone."""
    rows = table.dropna(subset=[column])
    by_mode = rows.groupby("mode", sort=False)[column].mean()
    per_run = zip(rows["backbone"] + "/" + rows["mode"], rows[column])
    return {str(k): round(float(v), 4) for k, v in [*by_mode.items(), *per_run]}


def write_table(frame: pd.DataFrame, stem: Path, title: str, notes: Sequence[str],
                parts: Sequence[tuple[str, pd.DataFrame]] | None = None,
                shared: Sequence[str] = ()) -> None:
    """Write ``<stem>.csv`` (every column, full precision), and for people ``<stem>.md`` and
    ``<stem>.html`` (what the Snakemake report shows): ``parts`` (heading, table of strings;
    default: the whole frame by the precision rule, with the house's headers) under
    ``title``, then ``notes``;
    ``shared``: the conventions every result table shares, pointed to from the Markdown (they
    are the README beside it) and written out in the HTML (the report has no README)."""
    parts = [("", worded(frame))] if parts is None else parts
    write_csv(stem.with_suffix(".csv"), frame)
    write_text(stem.with_suffix(".md"), page(title, parts, notes, bool(shared)))
    write_text(stem.with_suffix(".html"), html_page(title, parts, [*notes, *shared]))


NOISE_NOTES = [
    "health: ok, diverged (final train loss not below that of a uniform guess) or at chance "
    "(test metric within 2 standard errors of chance), per seed; no difference is computed "
    "against a row that is not ok.",
    "s.e.: the standard error of one run's primary metric from its number of test images "
    "(binomial for an error rate; (1 - rho^2) / sqrt(N - 3) for a correlation).",
    "vs default (± s.e.): the row's primary metric minus its backbone's default ± the "
    "standard error of that difference (per mean: the larger of the seed spread and the "
    "per-run error, over sqrt(seeds)); ≈ marks a difference within 2 standard errors, i.e. "
    "not resolved. vs control: the same for a warm-started learned resizer against its "
    "equal-epoch control (the warm row with a fixed resizer).",
    "gap recovered: for a row that resizes inside the model (px in > model), (default - row) "
    "/ (default - the default's resizer trained at the row's input size): 100% recovers "
    "everything a higher resolution gives, 0% nothing; empty where that gap is itself within "
    "noise.",
]
CLASSIFICATION_NOTES = [
    "top-1 err (%): error on the whole validation split (resize the shorter side to input / "
    "eval_crop, centre crop input px).",
    "Modes: default, bilinear_hr (bilinear at the input size, the higher-resolution "
    "reference) and the in-model controls bilinear_noaa (plain bilinear inside the model, "
    "the learned resizer's skip alone) and band_energy (a hand-built resizer that adds the "
    "local energy above the model size's Nyquist as colour offsets) train from scratch; "
    "bilinear_continued is default fine-tuned further (the equal-epoch control); learned is "
    "the paper's protocol (a learned resizer fine-tuned with default's backbone); "
    "learned_scratch trains a learned resizer and a fresh backbone together (the positive "
    "control); learned_warm is the paper's protocol started from band_energy's backbone (one "
    "that already reads fine detail) instead of default's, and band_energy_continued its "
    "equal-epoch control (band_energy's own resizer continued from the same checkpoint).",
]
#: What each regime of the classification table means (its heading in the Markdown).
REGIME_NOTES = {"removed": "the fine cue lies above the model size's Nyquist frequency: the "
                           "default's antialiased resize removes it",
                "attenuated": "the fine cue lies just below it: the default's resize "
                              "attenuates it and folds masking texture onto it; "
                              "synthetic.attenuated"}
IQA_NOTES = [
    "On the test split: SRCC/PLCC mean = Spearman/Pearson correlation of predicted and human "
    "mean scores (the CSV also has them for the scores' standard deviations); accuracy = "
    "binary accuracy with threshold 5 on the mean score; EMD = earth mover's distance (r=2) "
    "to the human vote histograms (lower is better).",
    "Modes: default is the classification default's backbone with a 10-bin head, fine-tuned "
    "on AVA; the other modes fine-tune that IQA default further.",
]
DIAGNOSTICS_NOTES = [
    "One row per run whose model changes the resolution itself, mean over seeds, on the "
    "first 256 validation images (normalised inputs at the input size).",
    "high-band transfer: mean square of resizer(x) - resizer(lowpass(x)) over the mean square "
    "of x - lowpass(x), where lowpass keeps what the output grid can hold (below its Nyquist "
    "frequency): how much of the input's band above the model size's Nyquist changes the "
    "output (0: removed; about 1: passed at full strength, folded or carried). The two "
    "columns after it: the same for the default pipeline's antialiased bilinear resize and "
    "for plain bilinear (the learned resizer's skip) on the same images.",
    "residual RMS, residual peak: median per image of the learned residual's RMS and largest "
    "absolute value; skip RMS: RMS of the skip image around its mean (the image's own "
    "scale); residual / skip: their ratio.",
]
TRANSFER_NOTES = [
    "resizer trained with: the backbone the learned resizer was trained with before it was "
    "fine-tuned jointly with this row's backbone (from that backbone's default); (fixed) = "
    "the default fixed resizer; the row's own backbone = its own learned resizer.",
    "vs default, vs own learned (± s.e.): the row's primary metric minus the target's default "
    "and minus the target's own learned resizer, ± the standard error of that difference, as "
    "in the main tables (≈: within 2 standard errors).",
]
ABLATION_NOTES = [
    "Per task and backbone, the primary metric of each r x n cell (± the standard error of "
    "one run, from its number of test images); each cell's health is in the CSV.",
    "r residual blocks and n filters of the learned resizer, each cell fine-tuned from the "
    "task's default like the main learned run.",
]
