"""Stage ``prepare-imagenet``: checked manifests (path, label, wnid, width, height) per split,
the class list, and a report of every file dropped, converted or ignored.

Reads ``data.imagenet`` (root, layout, extract_to, verify_md5, expect_official) and
``data.check`` (workers, convert_quality). Writes ``--out``/{train,val,classes}.csv (plus
``converted/`` when a file needed converting), ``--report`` and ``--summary``.
"""

from __future__ import annotations

import argparse

from pipeline.data import prepared
from pipeline.data.imagenet import prepare_configured


def add_arguments(parser: argparse.ArgumentParser) -> None:
    prepared.add_arguments(parser, "train.csv, val.csv, classes.csv")


def main(args: argparse.Namespace) -> None:
    prepared.run_stage(args, prepare_configured, decoded=False)
