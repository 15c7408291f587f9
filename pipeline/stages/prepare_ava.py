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

from pipeline.data import prepared
from pipeline.data.ava import prepare_configured


def add_arguments(parser: argparse.ArgumentParser) -> None:
    prepared.add_arguments(parser, "train.csv, test.csv, split.csv")


def main(args: argparse.Namespace) -> None:
    prepared.run_stage(args, prepare_configured, decoded=True)
