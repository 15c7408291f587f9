"""Stage ``preresize``: smaller copies of a prepared dataset's images (or, with
``preresize.enabled: false``, its manifests passed through unchanged).

Reads ``preresize`` (enabled, max_short_side, jpeg_quality, workers) and
``loader.decoded_max_mb``; reads ``--manifests`` (a prepare stage's output folder) and writes
``--out`` (the same CSVs, plus images/ when enabled, plus each small split's images decoded
once: :mod:`pipeline.loaders.decoded`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.core.io import atomic_dir
from pipeline.core.manifests import manifest_names, read_manifest
from pipeline.data.preresize import preresize_dir
from pipeline.loaders.decoded import write_decoded
from pipeline.params.config import load_params

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifests", type=Path, required=True,
                        help="a prepare stage's output folder (train.csv, ...)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder: the manifests, and images/ when enabled")


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    cfg = params["preresize"]
    with atomic_dir(args.out) as tmp:
        preresize_dir(args.manifests, tmp, args.out, cfg["enabled"], cfg["max_short_side"],
                      cfg["jpeg_quality"], cfg["workers"])
        write_decoded(tmp, args.out, {name: read_manifest(tmp, name)
                                      for name in manifest_names(tmp)},
                      params["loader"]["decoded_max_mb"])
    log.info("manifests written to %s", args.out)
