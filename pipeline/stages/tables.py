"""Stage ``tables``: every run's metrics, aggregated over seeds, into results/tables/
(classification, iqa, transfer, ablation, diagnostics; CSV and Markdown; README.md, the
conventions every table shares), and summary.json, the headline numbers experiments are
compared by; and the loader benchmark's CSV as a page for the report (``--bench``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from pipeline.core.io import write_json, write_text
from pipeline.params.config import load_params
from pipeline.params.runs import all_runs
from pipeline.report.bench_page import bench_page
from pipeline.report.table_format import (ablation_grids, convention_notes, conventions,
                                          diagnostics_people, people)
from pipeline.report.tables import (ABLATION_NOTES, CLASSIFICATION_NOTES, DIAGNOSTICS_NOTES,
                                    IQA_NOTES, NOISE_NOTES, TRANSFER_NOTES, ablation_table,
                                    diagnostics_table, headline, main_table, read_runs,
                                    transfer_table, write_table)

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics", type=Path, required=True,
                        help="directory of per-run metrics (<task>/<backbone>/<mode>/seed<s>.json)")
    parser.add_argument("--out", type=Path, required=True, help="directory for the tables")
    parser.add_argument("--bench", type=Path,
                        help="the loader benchmark's CSV, also written as <same name>.html")


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    frame = read_runs(args.metrics, all_runs(params))
    tool = " / ".join(sorted(frame["macs_tool"].unique()))
    seeds, transfer = params["seeds"], params["transfer"]
    main = {task: main_table(frame, task) for task in ("classification", "iqa")}
    transfer, ablation = transfer_table(frame, transfer), ablation_table(frame)
    diagnostics = diagnostics_table(frame)
    pages = {
        "classification": (main["classification"], "ImageNet-format classification",
                           [("", people(main["classification"], "classification"))],
                           CLASSIFICATION_NOTES),
        "iqa": (main["iqa"], "AVA-format image quality assessment (NIMA)",
                [("", people(main["iqa"], "iqa"))], IQA_NOTES),
        "transfer": (transfer, "Cross-baseline transfer of learned resizers",
                     [(task, people(part, task)) for task, part in by_task(transfer)],
                     TRANSFER_NOTES),
        "ablation": (ablation, "Ablation: residual blocks r x filters n",
                     ablation_grids(ablation),
                     [*ABLATION_NOTES, f"Seeds of each cell: {params['ablation']['seeds']}."]),
        "diagnostics": (diagnostics, "What the resizers do: residual size and the band above "
                        "the model size's Nyquist",
                        [("", diagnostics_people(diagnostics))] if not diagnostics.empty else [],
                        DIAGNOSTICS_NOTES),
    }
    shared = convention_notes(tool, seeds, NOISE_NOTES)
    for name, (table, title, parts, notes) in pages.items():
        write_table(table, args.out / name, title, notes, parts, shared)
        log.info("%s table (%d rows) written to %s", name, len(table), args.out)
    write_text(args.out / "README.md", conventions(tool, seeds, NOISE_NOTES))
    write_json(args.out / "summary.json", headline(main))
    if args.bench is not None:
        write_text(args.bench.with_suffix(".html"), bench_page(pd.read_csv(args.bench)))
        log.info("loader benchmark page written to %s", args.bench.with_suffix(".html"))


def by_task(table):
    """(task, rows) of a table that stacks both tasks, in task order."""
    if table.empty:
        return []
    return [(task, rows.dropna(axis=1, how="all")) for task, rows in
            table.groupby("task", sort=False)]
