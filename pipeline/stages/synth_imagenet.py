"""Stage ``synth-imagenet``: write the embedded synthetic benchmark (ImageNet layout), or with
``--variant attenuated`` its second regime (``synthetic.imagenet`` with
``synthetic.attenuated``'s values)."""

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
    parser.add_argument("--variant", choices=("attenuated",),
                        help="write synthetic.imagenet with the values of synthetic.<variant>")


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    synthetic = params["synthetic"]
    changed = synthetic[args.variant] if args.variant else {}
    spec = spec_from_params({**synthetic["imagenet"], **changed}, params["seed"])
    with atomic_dir(args.out) as tmp:
        counts = generate(spec, tmp)
    log.info("synthetic ImageNet: %s images in %s", counts, args.out)
