"""What a prepare stage writes, the same for every dataset: the checked manifests (swapped in
whole), a report of every row or file dropped, converted or ignored, and a summary of counts.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.core.io import atomic_dir, write_csv, write_json
from pipeline.core.manifests import write_manifests
from pipeline.params.config import load_params

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """What a dataset's ``prepare`` returns: the manifests of its image splits, the other
    tables written beside them (ImageNet's ``classes``, AVA's ``split``), the report's rows
    and the summary."""

    manifests: dict[str, pd.DataFrame]
    tables: dict[str, pd.DataFrame]
    report: pd.DataFrame
    summary: dict[str, Any]


def add_arguments(parser: argparse.ArgumentParser, tables: str) -> None:
    """A prepare stage's options; ``tables``: the CSVs its ``--out`` holds."""
    parser.add_argument("--out", type=Path, required=True,
                        help=f"directory for {tables} and converted/")
    parser.add_argument("--report", type=Path, required=True,
                        help="CSV of every row or file dropped, converted or ignored, with reason")
    parser.add_argument("--summary", type=Path, required=True,
                        help="JSON of counts per split: source = kept + dropped, by reason")


def run_stage(args: argparse.Namespace,
              prepare: Callable[[dict[str, Any], Path, Path], Prepared], *,
              decoded: bool) -> None:
    """A prepare stage: ``prepare(params, write_dir, out_dir)`` under ``args.params``, written
    by :func:`write_prepared`; ``decoded``: each small split's images are decoded once too
    (``loader.decoded_max_mb``)."""
    params = load_params(args.params)
    write_prepared(args, lambda tmp: prepare(params, tmp, args.out),
                   params["loader"]["decoded_max_mb"] if decoded else None)


def write_prepared(args: argparse.Namespace, prepare: Callable[[Path], Prepared],
                   decoded_max_mb: int | None = None) -> None:
    """Run ``prepare`` into a temporary folder (where it writes converted copies) and swap it
    in as ``args.out`` with the manifests; with ``decoded_max_mb``, each small split's images
    are also decoded once (:mod:`pipeline.loaders.decoded`). The report and summary are
    written before the swap: never new manifests beside an old report."""
    with atomic_dir(args.out) as tmp:
        result = prepare(tmp)
        write_manifests(tmp, {**result.manifests, **result.tables})
        if decoded_max_mb is not None:
            from pipeline.loaders.decoded import write_decoded  # torch: only where it decodes

            write_decoded(tmp, args.out, result.manifests, decoded_max_mb)
        write_csv(args.report, result.report)
        write_json(args.summary, result.summary)
    log.info("manifests written to %s; report %s, summary %s", args.out, args.report,
             args.summary)
