"""Stage ``tables``: every run's metrics, aggregated over seeds, into results/tables/
(classification, iqa, transfer, ablation, diagnostics; CSV and Markdown), and summary.json,
the headline numbers experiments are compared by."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.config import load_params
from pipeline.runs import all_runs
from pipeline.io import write_json
from pipeline.tables import (ABLATION_NOTES, CLASSIFICATION_NOTES, DIAGNOSTICS_NOTES, IQA_NOTES,
                             TRANSFER_NOTES, ablation_table, common_notes, diagnostics_table,
                             headline, main_table, read_runs, transfer_table, write_table)

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics", type=Path, required=True,
                        help="directory of per-run metrics (<task>/<backbone>/<mode>/seed<s>.json)")
    parser.add_argument("--out", type=Path, required=True, help="directory for the tables")


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    frame = read_runs(args.metrics, all_runs(params))
    tool = " / ".join(sorted(frame["macs_tool"].unique()))
    seeds, transfer = params["seeds"], params["transfer"]
    tables = {
        "classification": (main_table(frame, "classification"),
                           "ImageNet-format classification", CLASSIFICATION_NOTES, seeds),
        "iqa": (main_table(frame, "iqa"), "AVA-format image quality assessment (NIMA)",
                IQA_NOTES, seeds),
        "transfer": (transfer_table(frame, transfer),
                     "Cross-baseline transfer of learned resizers", TRANSFER_NOTES, seeds),
        "ablation": (ablation_table(frame), "Ablation: residual blocks r x filters n",
                     ABLATION_NOTES, params["ablation"]["seeds"]),
        "diagnostics": (diagnostics_table(frame), "What the resizers do: residual size and "
                        "the band above the model size's Nyquist", DIAGNOSTICS_NOTES, seeds),
    }
    for name, (table, title, extra, table_seeds) in tables.items():
        write_table(table, args.out / name, title, [*extra, *common_notes(tool, table_seeds)])
        log.info("%s table (%d rows) written to %s", name, len(table), args.out)
    write_json(args.out / "summary.json",
               headline({task: tables[task][0] for task in ("classification", "iqa")}))
