"""Stage ``synth-ava``: write the embedded synthetic IQA set (AVA layout).

Reads ``seed`` and ``synthetic.ava``; writes ``--out`` (AVA.txt, images/, aesthetics_image_lists/,
degradations.csv).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.core.io import atomic_dir
from pipeline.data.synth_ava import SynthAvaSpec, generate
from pipeline.params.config import load_params

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True,
                        help="output root (AVA.txt, images/, aesthetics_image_lists/)")


def spec_from_params(params: dict) -> SynthAvaSpec:
    """The generator's spec (its ranges are checked with the rest of params.yaml,
    :func:`pipeline.params.config.check_semantics`)."""
    cfg = dict(params["synthetic"]["ava"])
    return SynthAvaSpec(seed=params["seed"], **{**cfg, **{key: tuple(cfg[key]) for key in (
        "votes", "jpeg_quality", "contrast", "detail_cycles")}})


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    spec = spec_from_params(params)
    with atomic_dir(args.out) as tmp:
        counts = generate(spec, tmp)
    log.info("synthetic AVA: %s images in %s", counts, args.out)
