"""Stage ``probe-ava``: can the IQA set's quality be read from what the models see?

The IQA twin of the ``probe`` stage (:mod:`pipeline.stages.probe`): a ridge read-out of fixed
spectral features of the prepared AVA set's eval inputs at the IQA default's size (the model
size) and at every learned resizer's input size, scored by its test SRCC. On the embedded
synthetic set it reads the generator's two quality factors and the mean score, and fails,
before any IQA training, when the fine quality survives the default pipeline or is missing at
the input size; on real AVA it reads the mean score and only reports.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from pipeline.core.errors import DatasetError
from pipeline.core.manifests import read_manifest
from pipeline.data.probe import QualityRow, quality_gate_problems, quality_rows
from pipeline.data.synth_ava import TRUTH_FILE
from pipeline.params.config import SYNTHETIC_AVA_DIR, load_params
from pipeline.report.table_format import worded
from pipeline.report.tables import write_table
from pipeline.stages.probe import VALID, features_at, probe_sizes, sample, stop_if_invalid

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
#: The generator's truth columns the probe reads, by target name.
FACTORS = {"fine quality": "fine_quality", "coarse quality": "coarse_quality"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifests", type=Path, required=True,
                        help="prepared IQA manifests (train.csv, test.csv)")
    parser.add_argument("--out", type=Path, required=True, help="output stem (no suffix)")


def targets_of(splits: list[pd.DataFrame], truth: pd.DataFrame | None
               ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(train, test) targets: the generator's factors (synthetic set) and the mean score."""
    targets = {}
    if truth is not None:
        for name, column in FACTORS.items():
            targets[name] = tuple(torch.tensor(truth.loc[m["image_id"], column].to_numpy())
                                  for m in splits)
    targets["mean score"] = tuple(torch.tensor(m["mean"].to_numpy()) for m in splits)
    return targets


def read_truth(root: Path) -> pd.DataFrame:
    """The synthetic set's generator truth, by image id."""
    path = root / TRUTH_FILE
    if not path.is_file():
        raise DatasetError(f"{path} is missing: the synthetic AVA set lacks its generator "
                           f"truth; rerun the synth-ava stage")
    return pd.read_csv(path).set_index("image_id")


def row_dicts(rows: list[QualityRow], verdicts: dict[str, str]) -> pd.DataFrame:
    """The probe table: one row per (target, size)."""
    return pd.DataFrame([{"target": r.target, "size": r.size, "role": r.role,
                          "probe_srcc": round(r.srcc, 3), "train_images": r.train_images,
                          "test_images": r.test_images, "verdict": verdicts.get(r.target, "")}
                         for r in rows])


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """The table for people: the house's headers, SRCC to 0.001 as the IQA table's."""
    out = worded(table).rename(columns={"probe srcc": "probe SRCC"})
    out["probe SRCC"] = [f"{v:.3f}" for v in table["probe_srcc"]]
    return out


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    cfg, root = params["probe"], params["data"]["ava"]["root"]
    synthetic = root == SYNTHETIC_AVA_DIR
    splits = [sample(read_manifest(args.manifests, s), cfg["max_images"], params["seed"])
              for s in SPLITS]
    targets = targets_of(splits, read_truth(Path(root)) if synthetic else None)
    sizes = probe_sizes(params, "iqa")
    resizer = params["iqa"]["baselines"]["default"]["resizer"]
    features = {size: tuple(features_at(m, size, params, resizer) for m in splits)
                for size in sizes}
    rows = quality_rows(features, targets, sizes)
    for row in rows:
        log.info("probe %-14s at %3d px (%s): SRCC %.3f", row.target, row.size, row.role,
                 row.srcc)
    problems = quality_gate_problems(rows, max_model_srcc=cfg["max_model_srcc"],
                                     min_input_srcc=cfg["min_input_srcc"]) if synthetic else []
    stop_if_invalid(problems, "synthetic IQA set")
    table = row_dicts(rows, {"fine quality": VALID["removed"] if synthetic else ""})
    write_table(table, args.out, "IQA validity probe: what a linear read-out of the inputs can "
                "tell", probe_notes(cfg, synthetic, resizer), parts=[("", shown(table))])
    log.info("IQA probe table written to %s", args.out)


def probe_notes(cfg: dict[str, Any], synthetic: bool, resizer: str) -> list[str]:
    """What the table's columns mean and what was checked."""
    notes = [
        "probe: ridge regression (L2 = 1 on standardised features) on fixed features of the "
        "eval inputs (log spectral energy of the luminance in 8 radial x 4 orientation bands, "
        "and the mean colour), fit on the train split; probe SRCC = Spearman correlation of "
        "its predictions with the target on the test split (pipeline/data/probe.py).",
        f"size: the eval input's resolution ({resizer}, shorter side to size / eval_crop, "
        "centre crop), made by the same loader as training; the model-size row is the IQA "
        "default's input, the others are learned resizers' inputs.",
    ]
    if synthetic:
        notes.append(
            "targets: the generator's fine quality (strength of the detail above 32 px's "
            "Nyquist) and coarse quality (contrast), and the raters' mean score. The gate: "
            f"fine quality SRCC <= {cfg['max_model_srcc']} at the model size (lost) and >= "
            f"{cfg['min_input_srcc']} at every input size (present).")
    else:
        notes.append("real data: no generator truth, so the probe only reports how well the "
                     "mean score can be read linearly at each size; no gate.")
    return notes
