"""Stage ``prepare-ava``: checked manifests (path, image_id, width, height, votes, mean, std,
p1..p10) per split, the split used, and a report of every row or file dropped, converted or
ignored.

Reads ``data.ava`` (root, split, test_fraction, split_seed), ``data.check`` (workers,
convert_quality) and ``loader.decoded_max_mb``. Writes ``--out``/{train,test,split}.csv (plus
``converted/`` when a file needed converting, and each small split's images decoded once:
:mod:`pipeline.loaders.decoded`), ``--report`` and ``--summary``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.core.io import atomic_dir, write_csv, write_json
from pipeline.core.manifests import write_manifests
from pipeline.data.ava import AvaConfig, check_root, prepare
from pipeline.loaders.decoded import write_decoded
from pipeline.params.config import load_params

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True,
                        help="directory for train.csv, test.csv, split.csv and converted/")
    parser.add_argument("--report", type=Path, required=True,
                        help="CSV of every row or file dropped, converted or ignored, with reason")
    parser.add_argument("--summary", type=Path, required=True,
                        help="JSON of counts per split: source = kept + dropped, by reason")


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    cfg = AvaConfig.from_params(params["data"]["ava"])
    check = params["data"]["check"]
    check_root(cfg.root)
    with atomic_dir(args.out) as tmp:
        result = prepare(cfg, tmp, args.out, check["workers"], check["convert_quality"])
        write_manifests(tmp, {**result.manifests, "split": result.split})
        write_decoded(tmp, args.out, result.manifests, params["loader"]["decoded_max_mb"])
        # report and summary before the manifests swap in: never new manifests with an old report
        write_csv(args.report, result.report)
        write_json(args.summary, result.summary)
    log.info("manifests written to %s; report %s, summary %s", args.out, args.report,
             args.summary)
