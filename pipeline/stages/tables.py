"""Stage ``tables``: every run's metrics, aggregated over seeds, into results/tables/
(each table of pipeline.report.pages; CSV, Markdown and HTML; README.md, the
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
from pipeline.report.pages import PAGES
from pipeline.report.table_format import convention_notes, conventions
from pipeline.report.tables import NOISE_NOTES, by_regime, headline, read_runs, write_table

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
    seeds = params["seeds"]
    shared = convention_notes(tool, seeds, NOISE_NOTES)
    tables = {}
    for name, page in PAGES.items():
        table = tables[name] = page.build(frame, params)
        write_table(table, args.out / name, page.title, page.notes(params), page.parts(table),
                    shared)
        log.info("%s table (%d rows) written to %s", name, len(table), args.out)
    write_text(args.out / "README.md", conventions(tool, seeds, NOISE_NOTES))
    write_json(args.out / "summary.json", headline(
        {**by_regime(tables["classification"]), "iqa": tables["iqa"]}))
    if args.bench is not None:
        write_text(args.bench.with_suffix(".html"), bench_page(pd.read_csv(args.bench)))
        log.info("loader benchmark page written to %s", args.bench.with_suffix(".html"))
