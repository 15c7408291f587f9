"""Stage ``tables``: gather every run's metrics into results/tables/classification.{csv,md}."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.config import classification_runs, load_params
from pipeline.tables import (classification_notes, classification_table, read_run_metrics,
                             write_table)

log = logging.getLogger(__name__)
NAME = "tables"
HELP = "write the classification table from the per-run metrics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics", type=Path, required=True,
                        help="directory of per-run metrics (<backbone>/<mode>.json)")
    parser.add_argument("--out", type=Path, required=True, help="directory for the tables")


def main(args: argparse.Namespace) -> None:
    runs = classification_runs(load_params(args.params))
    metrics = read_run_metrics(args.metrics, runs)
    frame = classification_table(runs, metrics)
    tools = sorted({m["macs_tool"] for m in metrics.values()})
    write_table(frame, args.out / "classification", "ImageNet-format classification",
                classification_notes(" / ".join(tools)))
    log.info("classification table (%d rows) written to %s", len(frame), args.out)
