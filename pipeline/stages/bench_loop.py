"""Stage ``bench-loop``: the training loop's images/s beside a bare PyTorch loop's, per run.

Reads ``bench.loop`` (runs, batches, repeats), the runs' params and ``train.cpu_threads``;
reads ``--manifests`` (the classification manifests, decoded images included) and writes
``--out`` (CSV). Machine-dependent timings, like the loader benchmark's.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.bench.loop import run_loop_bench
from pipeline.core.io import write_csv
from pipeline.params.config import ConfigError, load_params

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifests", type=Path, required=True,
                        help="classification manifests folder (preresize stage's output)")
    parser.add_argument("--out", type=Path, required=True, help="CSV of the measurements")


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    if "loop" not in params.get("bench", {}):
        raise ConfigError(f"{args.params}: no 'bench.loop' section; copy it from the "
                          f"repository's params.yaml")
    frame = run_loop_bench(params, args.manifests)
    write_csv(args.out, frame)
    log.info("loop benchmark written to %s:\n%s", args.out, frame.to_string(index=False))
