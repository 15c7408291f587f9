"""The DAG's own benchmark: per stage wall and CPU seconds, split into start-up, waiting for
data and compute, from the timing line each finished stage logs (``pipeline.cli.TIMING``).

    python workflow/scripts/stage_times.py [--logs logs] [--out results/bench/stages.csv]

Run it after ``make repro`` (or a Snakemake run): it reads every stage log under ``--logs``
whose last line is a timing line, and writes one row per stage plus a ``total`` row. The total's
``span_s`` is the wall time from the first stage's start to the last one's end; beside the sum
of the stages' wall times it shows what the engine spent between stages (serial engines) or
gained by running stages side by side (``--cores 2``). A stage the engine skipped keeps the log
of the run that made its outputs: compare ``finished`` to tell.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import re
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.cli import TIMING  # noqa: E402
from pipeline.report.bench_table import cpu_model  # noqa: E402

log = logging.getLogger("stage_times")
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
FIELD = re.compile(r"(\w+)=([-\d.na]+)")


def parse_log(path: Path) -> dict | None:
    """The stage's timing fields and end time, or ``None`` when its last run did not finish."""
    lines = path.read_text(errors="replace").splitlines()
    last = next((line for line in reversed(lines) if TIMING in line), None)
    if last is None or not STAMP.match(last):
        return None
    finished = dt.datetime.strptime(STAMP.match(last).group(1), "%Y-%m-%d %H:%M:%S,%f")
    fields = {k: float(v) for k, v in FIELD.findall(last.split(TIMING, 1)[1])}
    started = finished - dt.timedelta(seconds=fields["wall_s"])
    return {"started": started, "finished": finished, **fields}


def stage_name(path: Path, logs: Path) -> str:
    """``logs/train/classification/x/default/seed0.log`` -> ``train/classification/...``."""
    return path.relative_to(logs).with_suffix("").as_posix()


def stage_table(logs: Path) -> pd.DataFrame:
    """One row per finished stage, in start order, and a ``total`` row."""
    rows = []
    for path in sorted(logs.rglob("*.log")):
        found = parse_log(path)
        if found is None:
            log.warning("%s: no timing line (the stage failed, was interrupted or predates "
                        "stage timing); left out", path)
            continue
        rows.append({"stage": stage_name(path, logs), **found})
    if not rows:
        raise SystemExit(f"no stage log under {logs} ends with a timing line: run the DAG first")
    frame = pd.DataFrame(rows).sort_values("started", kind="stable")
    frame["compute_wall_s"] = frame["wall_s"] - frame["startup_wall_s"] - frame["data_wall_s"]
    span = (frame["finished"].max() - frame["started"].min()).total_seconds()
    total = {"stage": "total", "started": frame["started"].min(),
             "finished": frame["finished"].max(),
             **frame.select_dtypes("number").sum().to_dict(), "span_s": span}
    frame = pd.concat([frame, pd.DataFrame([total])], ignore_index=True)
    for key in ("started", "finished"):
        frame[key] = frame[key].dt.strftime("%Y-%m-%d %H:%M:%S")
    frame["cpus"] = os.cpu_count()
    frame["cpu_model"] = cpu_model()
    return frame.round(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", type=Path, default=Path("logs"))
    parser.add_argument("--out", type=Path, default=Path("results/bench/stages.csv"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    table = stage_table(args.logs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, lineterminator="\n")
    total = table.iloc[-1]
    print(f"{len(table) - 1} stages: span {total['span_s']:.0f} s wall; stages {total['wall_s']:.0f}"
          f" s wall (start-up {total['startup_wall_s']:.0f}, data {total['data_wall_s']:.0f}, "
          f"compute {total['compute_wall_s']:.0f}), {total['cpu_s']:.0f} s CPU (start-up "
          f"{total['startup_cpu_s']:.0f}); written to {args.out}")


if __name__ == "__main__":
    main()
