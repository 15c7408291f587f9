"""Stage ``plan``: validate params.yaml whole, then write each job's digest to data/plan/.

First in the DAG (under Snakemake, a step of parsing the Snakefile): a bad params.yaml (schema,
cross-field rules, dataset paths, backbone names) stops everything here, before any other
stage has removed an output. A digest holds the hash of the job's code and the values of the
params it reads (:mod:`pipeline.dag.plan`); only those whose content changed are rewritten.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.dag.dvcyaml import render
from pipeline.dag.plan import PLAN_DIR, check_and_write
from pipeline.params.config import load_params

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=PLAN_DIR,
                        help=f"folder of the digests (default: {PLAN_DIR})")


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    check_and_write(params, str(args.params), args.out)
    dvc_yaml = args.params.parent / "dvc.yaml"
    if dvc_yaml.is_file() and dvc_yaml.read_text() != render(params):
        log.warning("%s does not match %s: its plots list other runs (or the plan changed); "
                    "run `make dvc.yaml`", dvc_yaml, args.params)
