"""Stage ``prepare-imagenet``: checked manifests (path, label, wnid, width, height) per split,
the class list, and a report of every file dropped, converted or ignored.

Reads ``data.imagenet`` (root, layout, extract_to, verify_md5, expect_official) and
``data.check`` (workers, convert_quality); with ``--tree``, an extracted tree instead of
``data.imagenet`` (the embedded second regime), its small splits also decoded once
(``loader.decoded_max_mb``), as no preresize stage follows it. Writes
``--out``/{train,val,classes}.csv (plus ``converted/`` when a file needed converting),
``--report`` and ``--summary``.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from pipeline.data import prepared
from pipeline.data.imagenet import prepare_configured, prepare_tree


def add_arguments(parser: argparse.ArgumentParser) -> None:
    prepared.add_arguments(parser, "train.csv, val.csv, classes.csv")
    parser.add_argument("--tree", type=Path,
                        help="an extracted tree to prepare instead of data.imagenet (the "
                             "embedded second regime), decoding its small splits once")


def main(args: argparse.Namespace) -> None:
    if args.tree:
        prepared.run_stage(args, functools.partial(prepare_tree, args.tree), decoded=True)
    else:
        prepared.run_stage(args, prepare_configured, decoded=False)
