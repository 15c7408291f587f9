"""Stage ``resizer-params``: the paper's parameter table for r x n, with both conventions."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.params.config import load_params
from pipeline.report.resizer_params import resizer_param_table, table_notes
from pipeline.report.tables import write_table

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output stem (no suffix)")


def main(args: argparse.Namespace) -> None:
    cfg = load_params(args.params)["resizer_params"]
    frame = resizer_param_table(rs=cfg["r"], ns=cfg["n"], input_size=cfg["input_size"],
                                output_size=cfg["output_size"])
    notes = table_notes(cfg["input_size"], cfg["output_size"])
    write_table(frame, args.out, "Learned resizer size (r residual blocks, n filters)",
                [notes])
    log.info("resizer parameter table (%d rows) written to %s", len(frame), args.out)
