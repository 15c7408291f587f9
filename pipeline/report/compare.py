"""Does a rerun reproduce the committed tables? Each row's primary metric against the same row
of a git revision's table (HEAD: what the project committed), judged by the noise of both means.

Byte-identical tables are expected only where every factor of the float arithmetic is the same
(CPU kind and its vector units, ``train.cpu_threads``, package versions); elsewhere a rerun
agrees with the committed numbers within the noise the tables state (per mean: the larger of
the seed spread and the per-run test-set error, over sqrt(seeds); :func:`pipeline.core.noise.mean_se`).
A row is listed as differing when its two means are more than ``z`` standard errors apart.
No torch: runs on the tables alone.
"""

from __future__ import annotations

import io
import math
import subprocess
from pathlib import Path

import pandas as pd

from pipeline.core.errors import PipelineError
from pipeline.core.noise import mean_se
from pipeline.params.runs import PRIMARY_METRIC, REGIMES
from pipeline.report.pages import PAGES

#: The result tables compared, file stem -> the task of its rows (None: a ``task`` column).
TABLES = {name: page.task for name, page in PAGES.items() if page.compared}
IDENTITY = ("task", "backbone", "mode")
VERDICTS = ("within noise", "differs", "only in HEAD", "only here")


def read_revision(path: Path, revision: str = "HEAD", root: Path = Path(".")) -> str | None:
    """The text of ``path`` (relative to the repository root ``root``) at ``revision``; None
    where that revision has no such file. PipelineError when ``root`` is not a git checkout."""
    done = subprocess.run(["git", "-C", str(root), "show", f"{revision}:{path.as_posix()}"],
                          capture_output=True, text=True)
    if done.returncode == 0:
        return done.stdout
    if "does not exist" in done.stderr or "exists on disk, but not in" in done.stderr:
        return None
    raise PipelineError(f"cannot read {path} at {revision} with git: {done.stderr.strip()} "
                       "(compare needs the git checkout the results were committed in)")


def frame_of(text: str | None) -> pd.DataFrame:
    """A table CSV's rows (an empty frame for no file or an empty table)."""
    if not text or not text.strip():
        return pd.DataFrame()
    return pd.read_csv(io.StringIO(text))


def with_task(frame: pd.DataFrame, task: str | None) -> pd.DataFrame:
    """``frame`` with its rows' ``task`` column: ``task`` for a one-task table, each row's
    regime's task where the table names regimes (a table from before regimes: ``task``)."""
    if task is None or frame.empty:
        return frame
    if "regime" not in frame.columns:
        return frame.assign(task=task)
    return frame.assign(task=frame["regime"].map({r: t for t, r in REGIMES.items()}))


def row_noise(row: pd.Series, metric: str) -> float:
    """The standard error of the row's mean over its seeds."""
    std = row.get(f"{metric}_std")
    return mean_se(None if pd.isna(std) else float(std), float(row[f"{metric}_se"]),
                   int(row["seeds"]))


def indexed(frame: pd.DataFrame) -> dict[tuple, pd.Series]:
    """Rows by identity (task, backbone, mode)."""
    return {tuple(row[c] for c in IDENTITY): row for _, row in frame.iterrows()}


def compare_rows(head: pd.DataFrame, fresh: pd.DataFrame, z: float = 2.0) -> pd.DataFrame:
    """One line per row of either table (both with a ``task`` column): the primary metric's
    mean and its standard error in HEAD and here, the difference in standard errors of the
    difference, and the verdict (:data:`VERDICTS`)."""
    old, new = indexed(head), indexed(fresh)
    lines = []
    for key in [*old, *(k for k in new if k not in old)]:
        metric = PRIMARY_METRIC[key[0]]
        line = dict(zip(IDENTITY, key), metric=metric)
        for side, rows in (("head", old), ("here", new)):
            if key in rows:
                line[side], line[f"{side}_se"] = float(rows[key][f"{metric}_mean"]), \
                    row_noise(rows[key], metric)
        if key not in new:
            line["verdict"] = "only in HEAD"
        elif key not in old:
            line["verdict"] = "only here"
        else:
            se = math.hypot(line["head_se"], line["here_se"])
            line["z"] = (line["here"] - line["head"]) / se if se > 0 else \
                (0.0 if line["here"] == line["head"] else math.inf)
            line["verdict"] = "differs" if abs(line["z"]) > z else "within noise"
        lines.append(line)
    return pd.DataFrame(lines, columns=[*IDENTITY, "metric", "head", "head_se", "here", "here_se",
                                        "z", "verdict"])


def compare_tables(tables: Path, revision: str = "HEAD", root: Path = Path("."),
                   z: float = 2.0) -> tuple[dict[str, bool], pd.DataFrame]:
    """Every table of :data:`TABLES` under ``tables`` (a path inside the checkout ``root``)
    against ``revision``'s: per table whether its CSV is byte-identical, and the rows of
    :func:`compare_rows` of all of them. PipelineError for a table missing here."""
    identical, parts = {}, []
    for stem, task in TABLES.items():
        path = tables / f"{stem}.csv"
        if not path.is_file():
            raise PipelineError(f"{path} is missing: run the pipeline (`make repro`) first")
        text = path.read_text()
        committed = read_revision(path.resolve().relative_to(root.resolve()), revision, root)
        identical[stem] = committed == text
        rows = compare_rows(with_task(frame_of(committed), task), with_task(frame_of(text), task), z)
        parts.append(rows.assign(table=stem))
    return identical, pd.concat(parts, ignore_index=True)


def report(identical: dict[str, bool], rows: pd.DataFrame, revision: str, z: float) -> str:
    """People's summary: byte-identical tables, then every row that is not within noise,
    then the counts."""
    out = [f"Tables against {revision}: " + ", ".join(
        f"{stem} {'byte-identical' if same else 'changed'}" for stem, same in identical.items())]
    odd = rows[rows["verdict"] != "within noise"]
    for _, r in odd.iterrows():
        task = "" if r["task"] == r["table"] else f"{r['task']}/"
        where = f"{r['table']}: {task}{r['backbone']}/{r['mode']} ({r['metric']})"
        if r["verdict"] == "differs":
            out.append(f"  DIFFERS {where}: {r['head']:.4g} ± {r['head_se']:.2g} in {revision}, "
                       f"{r['here']:.4g} ± {r['here_se']:.2g} here ({r['z']:+.1f} s.e.)")
        else:
            out.append(f"  {r['verdict'].upper()} {where}")
    counts = rows["verdict"].value_counts()
    out.append(f"{len(rows)} rows: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)
               + f" (differs: more than {z:g} standard errors of the difference apart; by "
               f"chance alone about {100 * math.erfc(z / math.sqrt(2)):.0f}% of rows)")
    return "\n".join(out)
