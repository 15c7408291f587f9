"""Stage ``prepare-imagenet``: manifests (path, label, wnid, width, height) per split."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from pipeline.config import load_params
from pipeline.data.imagenet import scan_tree
from pipeline.io import atomic_dir, write_csv

log = logging.getLogger(__name__)
NAME = "prepare-imagenet"
HELP = "build train/val manifests and the class list from the ImageNet tree in params.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True,
                        help="directory for train.csv, val.csv and classes.csv")


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    wnids, manifests = scan_tree(params["data"]["imagenet"]["root"])
    with atomic_dir(args.out) as tmp:
        for split, frame in manifests.items():
            write_csv(tmp / f"{split}.csv", frame)
        write_csv(tmp / "classes.csv", pd.DataFrame({"label": range(len(wnids)), "wnid": wnids}))
    log.info("manifests written to %s", args.out)
