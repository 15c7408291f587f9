"""Stage ``synth-imagenet``: write the embedded synthetic benchmark (ImageNet layout)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.core.io import atomic_dir
from pipeline.data.synth_imagenet import generate, spec_from_params
from pipeline.params.config import load_params

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output root (train/, val/)")


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    spec = spec_from_params(params["synthetic"]["imagenet"], params["seed"])
    with atomic_dir(args.out) as tmp:
        counts = generate(spec, tmp)
    log.info("synthetic ImageNet: %s images in %s", counts, args.out)
