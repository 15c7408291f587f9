"""Stage ``prepare-imagenet``: checked manifests (path, label, wnid, width, height) per split,
the class list, and a report of every file dropped, converted or ignored.

Reads ``data.imagenet`` (root, layout, extract_to, verify_md5, expect_official) and
``data.check`` (workers, convert_quality). Writes ``--out``/{train,val,classes}.csv (plus
``converted/`` when a file needed converting), ``--report`` and ``--summary``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.core.io import atomic_dir, write_csv, write_json
from pipeline.core.manifests import write_manifests
from pipeline.data.imagenet import ImagenetConfig, collect, prepare
from pipeline.params.config import load_params

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True,
                        help="directory for train.csv, val.csv, classes.csv and converted/")
    parser.add_argument("--report", type=Path, required=True,
                        help="CSV of every file dropped, converted or ignored, with the reason")
    parser.add_argument("--summary", type=Path, required=True,
                        help="JSON of counts per split: source = kept + dropped, by reason")


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    cfg = ImagenetConfig.from_params(params["data"]["imagenet"])
    check = params["data"]["check"]
    source = collect(cfg)
    with atomic_dir(args.out) as tmp:
        result = prepare(source, tmp, args.out, check["workers"], check["convert_quality"])
        write_manifests(tmp, {**result.manifests, "classes": result.classes})
        # report and summary before the manifests swap in: never new manifests with an old report
        write_csv(args.report, result.report)
        write_json(args.summary, result.summary)
    log.info("manifests written to %s; report %s, summary %s", args.out, args.report,
             args.summary)
