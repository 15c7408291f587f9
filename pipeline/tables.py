"""Result tables: CSV for machines, Markdown (with conventions spelled out) for people.

Every table aggregates over ``seeds``: the CSV holds ``<metric>_mean`` and ``<metric>_std``
(sample standard deviation; empty with one seed) and ``seeds``; the Markdown shows
``mean ± std``. Rows are laid out like the paper's tables (baseline x resizer), each with the
cost of the model: parameters and GMACs.

The main tables also carry the noise that decides what a difference means
(:mod:`pipeline.noise`): the per-run standard error of the primary metric from the number of
test images, each row's difference to its backbone's ``default`` with the standard error of
that difference (``≈`` in the Markdown when it is within two), the share of the gap between
``default`` and the fixed resizer at the row's input size that a resizing row recovers, and
each row's health (:func:`pipeline.diagnostics.health`): a diverged or at-chance row is
marked and no difference is computed against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from pipeline.io import read_json, write_csv, write_text
from pipeline.noise import correlation_se, error_se, mean_se, resolved
from pipeline.runs import BASELINE_MODE, PRIMARY_METRIC, TASK_METRICS, Run, run_path

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
    if task == "classification":
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


def noise_columns(frame: pd.DataFrame, table: pd.DataFrame, task: str) -> pd.DataFrame:
    """:func:`run_noise`, then ``delta_vs_default`` / ``delta_se`` / ``delta_resolved`` and
    ``gap_recovered``."""
    metric = PRIMARY_METRIC[task]
    table = run_noise(frame, table, task)
    table["mean_se"] = [mean_se(std, se, k) for std, se, k in
                        zip(table[f"{metric}_std"], table[f"{metric}_se"], table["seeds"])]
    deltas = [delta_vs_default(table, row, metric) for _, row in table.iterrows()]
    table["delta_vs_default"] = [d[0] for d in deltas]
    table["delta_se"] = [d[1] for d in deltas]
    table["delta_resolved"] = [d[2] for d in deltas]
    table["gap_recovered"] = [gap_recovered(table, row, metric) for _, row in table.iterrows()]
    return table.drop(columns="mean_se")


def _row(table: pd.DataFrame, backbone: str, **match: Any) -> pd.Series | None:
    """The table's row of ``backbone`` whose columns equal ``match`` (None if none)."""
    hit = table[table["backbone"] == backbone]
    for column, value in match.items():
        hit = hit[hit[column] == value]
    return None if hit.empty else hit.iloc[0]


def delta_vs_default(table: pd.DataFrame, row: pd.Series, metric: str
                     ) -> tuple[float | None, float | None, bool | None]:
    """(row - default, its standard error, whether it exceeds two) for the primary metric;
    None where the row is the default or either is unhealthy."""
    base = _row(table, row["backbone"], mode=BASELINE_MODE)
    if base is None or row["mode"] == BASELINE_MODE or "ok" != row["health"] or \
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
    """Baselines, fixed-resizer fine-tunes, learned and joint resizers of one task, with the
    noise columns of :func:`noise_columns`."""
    rows = frame[(frame["task"] == task)
                 & frame["family"].isin(["baseline", "fixed", "learned", "joint"])]
    table = summarise(rows, task_metrics(task), LAYOUT["main"]).drop(columns="task")
    if table.empty:
        return table
    table = noise_columns(rows, table, task)
    tail = [c for c in (*COST, "seeds") if c in table.columns]
    return table[[c for c in table.columns if c not in tail] + tail]


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
    fine-tuned with it."""
    parts, mode = [], spec["mode"]
    for task in TASK_METRICS:
        for target in dict.fromkeys(p["target"] for p in spec[task]):
            mine = frame[(frame["task"] == task) & (frame["backbone"] == target)]
            chosen = mine[mine["mode"].isin(["default", mode]) | (mine["family"] == "transfer")]
            chosen = chosen.assign(resizer_from=chosen["resizer_from"].fillna(
                chosen["mode"].map({"default": "(fixed)", mode: target})))
            parts.append(run_noise(chosen, summarise(chosen, task_metrics(task),
                                                     LAYOUT["transfer"]), task))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def ablation_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The r x n grid per task and backbone."""
    cells = frame[frame["family"] == "ablation"]
    parts = [run_noise(cells, summarise(cells[cells["task"] == t], task_metrics(t),
                                        LAYOUT["ablation"]), t)
             for t in TASK_METRICS if (cells["task"] == t).any()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def delta_cell(delta: float | None, se: float | None, ok: bool | None) -> str:
    """``+1.2 ± 0.8`` with ``≈`` when within noise (empty where there is no comparison)."""
    if delta is None or pd.isna(delta):
        return ""
    return f"{delta:+.3g} ± {se:.2g}" + ("" if ok else " ≈")


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
        if column.endswith("_std") or column in ("delta_se", "delta_resolved"):
            continue
        if column == "delta_vs_default":
            out["vs default"] = [delta_cell(d, s, ok) for d, s, ok in
                                 zip(frame[column], frame["delta_se"], frame["delta_resolved"])]
            continue
        if column == "gap_recovered":
            out["gap recovered"] = ["" if pd.isna(g) else f"{100 * g:.0f}%"
                                    for g in frame[column]]
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


#: Short names of each task's headline numbers: (primary metric, gap recovered).
HEADLINE_KEYS = {"classification": ("top1", "gap"), "iqa": ("srcc", "iqa_gap")}


def headline(tables: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, float]]:
    """The numbers experiments are compared by (``dvc exp show``, ``dvc metrics diff``), under
    short keys so that the columns of a few modes fit a terminal: per task, its primary
    metric's mean (``top1`` %, ``srcc``) for each ``backbone/mode`` and, where defined, the
    share of the gap a mode recovers (``gap``, classification; ``iqa_gap``). Numbers only;
    empty cells are left out."""
    out: dict[str, dict[str, float]] = {}
    for task, table in tables.items():
        if table.empty:
            continue
        keys = [f"{b}/{m}" for b, m in zip(table["backbone"], table["mode"])]
        metric, gap = HEADLINE_KEYS[task]
        for name, column in ((metric, f"{PRIMARY_METRIC[task]}_mean"), (gap, "gap_recovered")):
            values = {k: round(float(v), 4) for k, v in zip(keys, table[column]) if pd.notna(v)}
            if values:
                out[name] = values
    return out


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


NOISE_NOTES = [
    "health: ok, diverged (final train loss not below that of a uniform guess) or at chance "
    "(test metric within 2 standard errors of chance), per seed; no difference is computed "
    "against a row that is not ok.",
    "<metric>_se: the standard error of one run's primary metric from its number of test "
    "images (binomial for an error rate; (1 - rho^2) / sqrt(N - 3) for a correlation).",
    "vs default: the row's primary metric minus its backbone's default ± the standard error "
    "of that difference (per mean: the larger of the seed spread and the per-run error, over "
    "sqrt(seeds)); ≈ marks a difference within 2 standard errors, i.e. not resolved.",
    "gap recovered: for a row that resizes inside the model (model_size < input_size), "
    "(default - row) / (default - the default's resizer trained at the row's input size): "
    "100% recovers everything a higher resolution gives, 0% nothing; empty where that gap "
    "is itself within noise.",
]
CLASSIFICATION_NOTES = [
    "top1_err, top5_err: % error on the whole validation split (resize shorter side to "
    "input_size / eval_crop, centre crop input_size).",
    "family: baseline = fixed resizer from scratch (bilinear_noaa: plain bilinear 64 -> 32 "
    "inside the model, the learned resizer's skip alone; band_energy: a hand-built resizer "
    "that adds the local energy above 32 px's Nyquist as colour offsets); fixed = fixed "
    "resizer fine-tuned from default (bilinear_continued is the equal-epoch control); learned "
    "= learned resizer fine-tuned jointly with default's backbone (the paper's protocol); "
    "joint = learned resizer and a fresh backbone trained together from scratch (the "
    "positive control).",
    *NOISE_NOTES,
]
IQA_NOTES = [
    "On the test split: srcc_mean/plcc_mean = Spearman/Pearson correlation of predicted and "
    "human mean scores; srcc_std/plcc_std = the same for standard deviations; accuracy = "
    "binary accuracy with threshold 5 on the mean score; emd = EMD (r=2) to the human vote "
    "histograms (lower is better).",
    "family: baseline = the classification default's backbone with a 10-bin head, fine-tuned "
    "on AVA; fixed/learned fine-tune that IQA default further.",
    *NOISE_NOTES,
]
DIAGNOSTICS_NOTES = [
    "One row per run whose model changes the resolution itself, mean over seeds, on the "
    "first 256 validation images (normalised inputs at input_size).",
    "hf_transfer: mean square of resizer(x) - resizer(lowpass(x)) over the mean square of "
    "x - lowpass(x), where lowpass keeps what the output grid can hold (below its Nyquist "
    "frequency): how much of the input's band above the model size's Nyquist changes the "
    "output (0: removed; about 1: passed at full strength, folded or carried). "
    "hf_transfer_bilinear_aa / _noaa: the same for the default pipeline's antialiased "
    "bilinear resize and for plain bilinear (the learned resizer's skip) on the same images.",
    "residual_peak, residual_rms: median per image of the learned residual's largest absolute "
    "value and its RMS; skip_rms: RMS of the skip image around its mean (the image's own "
    "scale); residual_to_skip: their ratio.",
]
TRANSFER_NOTES = [
    "health and <metric>_se: as in the classification table (run health; the standard error "
    "of one run's primary metric from its number of test images).",
    "resizer_from: the backbone the learned resizer was trained with before it was fine-tuned "
    "jointly with this row's backbone (from that backbone's default); (fixed) = the default "
    "fixed resizer; the row's own name = its own learned resizer.",
]
ABLATION_NOTES = [
    "health and <metric>_se: as in the classification table (run health; the standard error "
    "of one run's primary metric from its number of test images).",
    "r residual blocks and n filters of the learned resizer, each cell fine-tuned from the "
    "task's default like the main learned run.",
]
