"""Stage ``bench-loaders``: images/s and CPU per image of every available loader, one run."""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from pipeline.bench.loaders import BenchConfig, machine, run_bench
from pipeline.core.io import write_csv
from pipeline.params.config import ConfigError, load_params
from pipeline.report.bench_table import summary, with_machine

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="CSV of the measurements")
    parser.add_argument("--work", type=Path,
                        help="folder for the generated images (default: a temporary folder, "
                             "removed afterwards)")


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    if "bench" not in params:
        raise ConfigError(f"{args.params}: no 'bench' section; copy it from the repository's "
                          f"params.yaml")
    cfg = BenchConfig.from_params(params)
    info = machine()
    log.info("machine: %s", ", ".join(f"{k} {v}" for k, v in info.items()))
    if args.work is not None:
        frame = run_bench(cfg, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-loaders-") as work:
            frame = run_bench(cfg, Path(work))
    write_csv(args.out, with_machine(frame, info))
    log.info("loader benchmark (images/s; CPU ms per image; ratios to torch and to two cores' "
             "decode rate):\n%s", summary(frame))
    log.info("written to %s", args.out)
