"""Stage ``tables``: every run's metrics, aggregated over seeds, into results/tables/
(classification, iqa, transfer, ablation; CSV and Markdown)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.config import load_params
from pipeline.runs import all_runs
from pipeline.tables import (ABLATION_NOTES, CLASSIFICATION_NOTES, IQA_NOTES, TRANSFER_NOTES,
                             ablation_table, common_notes, main_table, read_runs,
                             transfer_table, write_table)

log = logging.getLogger(__name__)
NAME = "tables"
HELP = "write the classification, IQA, transfer and ablation tables from the per-run metrics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics", type=Path, required=True,
                        help="directory of per-run metrics (<task>/<backbone>/<mode>/seed<s>.json)")
    parser.add_argument("--out", type=Path, required=True, help="directory for the tables")


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params, backbones=False)
    frame = read_runs(args.metrics, all_runs(params))
    notes = common_notes(" / ".join(sorted(frame["macs_tool"].unique())), params["seeds"])
    transfer = params["transfer"]
    tables = {
        "classification": (main_table(frame, "classification"),
                           "ImageNet-format classification", CLASSIFICATION_NOTES),
        "iqa": (main_table(frame, "iqa"), "AVA-format image quality assessment (NIMA)",
                IQA_NOTES),
        "transfer": (transfer_table(frame, transfer),
                     "Cross-baseline transfer of learned resizers", TRANSFER_NOTES),
        "ablation": (ablation_table(frame),
                     "Ablation: residual blocks r x filters n", ABLATION_NOTES),
    }
    for name, (table, title, extra) in tables.items():
        write_table(table, args.out / name, title, [*extra, *notes])
        log.info("%s table (%d rows) written to %s", name, len(table), args.out)
