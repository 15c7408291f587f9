"""Result tables: CSV for machines, Markdown (with conventions spelled out) for people."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from pipeline.config import Run
from pipeline.io import read_json, write_csv, write_text

CLASSIFICATION_COLUMNS = ["backbone", "mode", "resizer", "input_size", "model_size", "epochs",
                          "top1_err", "top5_err", "params", "gmacs", "resizer_params",
                          "resizer_gmacs"]


def total_epochs(run: Run, runs: Sequence[Run]) -> int:
    """Epochs of the run plus those of the runs it started from."""
    by_mode = {(r.backbone, r.mode): r for r in runs}
    epochs, current = run.epochs, run
    while current.init is not None:
        current = by_mode[(current.backbone, current.init)]
        epochs += current.epochs
    return epochs


def classification_table(runs: Sequence[Run], metrics: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per run, in configuration order; ``metrics`` maps run name -> metrics JSON."""
    missing = [r.name for r in runs if r.name not in metrics]
    if missing:
        raise FileNotFoundError(f"no metrics for run(s) {missing}; run their train stages first")
    rows = [{**{k: metrics[r.name][k] for k in CLASSIFICATION_COLUMNS if k in metrics[r.name]},
             "epochs": total_epochs(r, runs)} for r in runs]
    return pd.DataFrame(rows, columns=CLASSIFICATION_COLUMNS)


def read_run_metrics(metrics_dir: Path, runs: Sequence[Run]) -> dict[str, dict[str, Any]]:
    """Metrics JSON of each configured run (``<dir>/<backbone>/<mode>.json``) that exists."""
    found = {}
    for run in runs:
        path = metrics_dir / run.backbone / f"{run.mode}.json"
        if path.is_file():
            found[run.name] = read_json(path)
    return found


def column_formats(frame: pd.DataFrame) -> list[str]:
    """Integers in full (parameter counts), floats to 4 significant digits."""
    return ["d" if pd.api.types.is_integer_dtype(dtype) else ".4g" for dtype in frame.dtypes]


def to_markdown(frame: pd.DataFrame, title: str, notes: Sequence[str]) -> str:
    """A GitHub-readable table with a title and one bullet per note line under it."""
    rows = frame.astype(object).to_dict("records")  # keep ints as ints (a frame's values go float)
    body = tabulate(rows, headers="keys", tablefmt="pipe", floatfmt=column_formats(frame),
                    intfmt=",")
    bullets = [f"- {line.strip()}" for note in notes for line in note.splitlines() if line.strip()]
    return "\n".join([f"# {title}", "", body, "", *bullets]) + "\n"


def write_table(frame: pd.DataFrame, stem: Path, title: str, notes: Sequence[str]) -> None:
    """Write ``<stem>.csv`` and ``<stem>.md``."""
    write_csv(stem.with_suffix(".csv"), frame)
    write_text(stem.with_suffix(".md"), to_markdown(frame, title, notes))


def classification_notes(macs_tool: str) -> list[str]:
    """What each column of the classification table means."""
    return [
        "top1_err, top5_err: % error on the whole validation split (resize shorter side to "
        "input_size / eval_crop, centre crop input_size).",
        "input_size: resolution the data pipeline resizes to; model_size: resolution the "
        "backbone sees (the learned resizer maps input_size -> model_size).",
        "epochs: total training epochs including the baseline run a model started from, so rows "
        "with equal epochs had equal training (bilinear_continued is the equal-epoch control).",
        "params: all trainable parameters of resizer + backbone; resizer_params: the resizer's "
        "(biases and BN affine included).",
        f"gmacs, resizer_gmacs: multiply-accumulates per image in units of 1e9, counted with "
        f"{macs_tool}; a fixed (bilinear/bicubic) resizer counts as 0.",
    ]
