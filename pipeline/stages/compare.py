"""Command ``compare``: after a rerun, every table row against the committed tables (git's HEAD),
listing each row whose primary metric differs beyond the noise of the two means.

Not a DAG stage: it writes nothing. On the machine kind the committed tables were made on,
they are byte-identical; elsewhere a rerun should agree within noise (:mod:`pipeline.report.compare`).
``--strict`` exits with status 1 when a row differs or is only on one side.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.report.compare import compare_tables, report

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tables", type=Path, default=Path("results/tables"),
                        help="folder of the tables to check (default: results/tables)")
    parser.add_argument("--against", default="HEAD",
                        help="git revision holding the reference tables (default: HEAD)")
    parser.add_argument("--z", type=float, default=2.0,
                        help="standard errors of the difference beyond which a row differs "
                             "(default: 2)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when any row differs or exists on one side only")


def main(args: argparse.Namespace) -> int:
    identical, rows = compare_tables(args.tables, args.against, Path("."), args.z)
    print(report(identical, rows, args.against, args.z))
    odd = int((rows["verdict"] != "within noise").sum())
    return 1 if args.strict and odd else 0
