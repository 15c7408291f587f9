"""Stage ``probe``: can the fine cue be read from what the models see? (the validity gate)

Fits the linear probe of :mod:`pipeline.data.probe` on a classification task's eval inputs at
the default's size (the model size) and at every learned resizer's input size, for the class
and, on an embedded synthetic set, for its fine cue alone. On the synthetic set the stage
fails, before any training, when the set is not in its regime (``--task``'s,
:data:`pipeline.params.runs.REGIMES`): for ``classification`` when the fine cue survives the
default pipeline or is missing at the input size; for ``attenuated`` when it is not readable
but weaker at the model size, or missing at the input size. On real data it only reports.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from pipeline.core.errors import DatasetError
from pipeline.core.manifests import read_manifest
from pipeline.data.probe import (INPUT_ROLE, MODEL_ROLE, ProbeRow, attenuated_problems,
                                 gate_problems, probe_rows, spectral_features)
from pipeline.data.synth_imagenet import FINE_CUES, fine_cue_of
from pipeline.loaders import LoaderSpec, build_loader, normalize
from pipeline.params.config import SYNTHETIC_IMAGENET_DIR, load_params
from pipeline.params.families import LEARNED
from pipeline.params.runs import REGIMES, family_modes, is_fixed
from pipeline.report.tables import write_table

log = logging.getLogger(__name__)

#: The verdict of a synthetic set that passes its gate, per regime.
VALID = {"removed": "valid: lost at the model size, present at the input size",
         "attenuated": "valid: attenuated at the model size, present at the input size"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifests", type=Path, required=True,
                        help="prepared classification manifests (train.csv, val.csv, classes.csv)")
    parser.add_argument("--out", type=Path, required=True, help="output stem (no suffix)")
    parser.add_argument("--task", choices=tuple(REGIMES), default="classification",
                        help="the classification task whose inputs and regime are probed")


def probe_sizes(params: dict[str, Any], task: str = "classification") -> dict[int, str]:
    """Size -> role: the task default's input size, then every learned mode's input size."""
    section = params[task]
    sizes = {section["baselines"]["default"]["input_size"]: MODEL_ROLE}
    families = family_modes(params, task)
    for spec in [spec for family in LEARNED for spec in families[family].values()
                 if not is_fixed(spec)]:
        sizes.setdefault(spec["input_size"], INPUT_ROLE)
    return sizes


def embedded_set(params: dict[str, Any], task: str) -> bool:
    """Whether a classification task's images are an embedded synthetic set (fine-cue labels,
    a gate): the second regime's always are, the first's unless data.imagenet is real."""
    return REGIMES[task] != "removed" or \
        params["data"]["imagenet"]["root"] == SYNTHETIC_IMAGENET_DIR


def stop_if_invalid(problems: list[str], what: str) -> None:
    """The gate: a DatasetError listing ``problems`` (none: the set is valid)."""
    if problems:
        raise DatasetError(f"the {what} cannot decide the paper's question:\n  "
                           + "\n  ".join(problems))


def sample(manifest: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """At most ``limit`` rows, a seeded sample in manifest order."""
    if len(manifest) <= limit:
        return manifest
    return manifest.sample(n=limit, random_state=seed).sort_index()


def features_at(manifest: pd.DataFrame, size: int, params: dict[str, Any],
                interpolation: str) -> torch.Tensor:
    """Probe features of a manifest's eval inputs at ``size`` (the training pipeline's eval
    transform: shorter side to size / eval_crop, centre crop, with ``interpolation``)."""
    loader_cfg = params["loader"]
    spec = LoaderSpec(size=size, batch_size=loader_cfg["batch_size"],
                      workers=loader_cfg["workers"], train=False,
                      scale=tuple(loader_cfg["train_scale"]), crop=loader_cfg["eval_crop"],
                      interpolation=interpolation, seed=params["seed"])
    parts = [spectral_features(normalize(images).cpu()) for images, _ in
             tqdm(build_loader(loader_cfg["kind"], manifest, spec), desc=f"probe {size}px",
                  unit="batch", leave=False, mininterval=5)]
    return torch.cat(parts)


def row_dicts(rows: list[ProbeRow], verdicts: dict[str, str]) -> pd.DataFrame:
    """The probe table: one row per (target, size)."""
    return pd.DataFrame([{"target": r.target, "size": r.size, "role": r.role,
                          "probe_error_pct": round(100 * r.error, 2),
                          "chance_error_pct": round(100 * r.chance, 2),
                          "share_of_chance": round(r.share, 3), "train_images": r.train_images,
                          "test_images": r.test_images, "verdict": verdicts.get(r.target, "")}
                         for r in rows])


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    cfg, regime = params["probe"], REGIMES[args.task]
    synthetic = embedded_set(params, args.task)
    classes = len(read_manifest(args.manifests, "classes"))
    splits = [sample(read_manifest(args.manifests, s), cfg["max_images"], params["seed"])
              for s in ("train", "val")]
    labels = tuple(torch.tensor(m["label"].to_numpy()) for m in splits)
    sizes = probe_sizes(params, args.task)
    resizer = params[args.task]["baselines"]["default"]["resizer"]
    features = {size: tuple(features_at(m, size, params, resizer) for m in splits)
                for size in sizes}
    targets = {"class": (lambda y: y, classes)}
    if synthetic:
        targets["fine cue"] = (fine_cue_of, len(FINE_CUES))
    rows = probe_rows(features, labels, sizes, targets)
    for row in rows:
        log.info("probe %-8s at %3d px (%s): error %.1f%% (chance %.1f%%)", row.target, row.size,
                 row.role, 100 * row.error, 100 * row.chance)
    problems = regime_problems(rows, cfg, regime) if synthetic else []
    stop_if_invalid(problems, f"synthetic benchmark ({regime} regime)")
    verdict = VALID[regime] if synthetic else ""
    write_table(row_dicts(rows, {"fine cue": verdict}), args.out,
                "Validity probe: what a linear read-out of the inputs can tell"
                + ("" if regime == "removed" else f" (the {regime} regime)"),
                probe_notes(cfg, synthetic, regime))
    log.info("probe table written to %s", args.out)


def regime_problems(rows: list[ProbeRow], cfg: dict[str, Any], regime: str) -> list[str]:
    """The gate of ``regime`` (probe's thresholds ``cfg``) on the probe's rows."""
    if regime == "removed":
        return gate_problems(rows, max_model_error_share=cfg["max_model_error_share"],
                             max_input_error=cfg["max_input_error"])
    return attenuated_problems(rows, **cfg[regime], max_input_error=cfg["max_input_error"])


def probe_notes(cfg: dict[str, Any], synthetic: bool, regime: str = "removed") -> list[str]:
    """What the probe table's columns mean and what was checked."""
    notes = [
        "probe: multinomial logistic regression on fixed features of the eval inputs (log "
        "spectral energy of the luminance in 8 radial x 4 orientation bands, and the mean "
        "colour), fit on the train split, scored on the val split (pipeline/data/probe.py).",
        "size: the eval input's resolution (shorter side to size / eval_crop, centre crop), "
        "made by the same loader as training; the model-size row is the default pipeline's "
        "input, the others are learned resizers' inputs.",
        "share of chance: probe error / chance error (1: nothing readable, 0: perfect).",
    ]
    if synthetic and regime == "removed":
        notes.append(
            f"fine cue: the class's fine texture (one of {', '.join(FINE_CUES)}). The gate: "
            f"at the model size share of chance >= {cfg['max_model_error_share']} (lost), at "
            f"every input size probe error <= {cfg['max_input_error']:.0%} (present).")
    elif synthetic:
        gate = cfg[regime]
        notes.append(
            f"fine cue: the class's fine texture (one of {', '.join(FINE_CUES)}), here just "
            f"below the model size's Nyquist frequency. The gate: at the model size share of "
            f"chance <= {gate['max_model_error_share']} (readable) and probe error at least "
            f"{gate['min_model_loss']:.0%} above the input size's (attenuated), at every input "
            f"size probe error <= {cfg['max_input_error']:.0%} (present).")
    else:
        notes.append("real data: no fine-cue labels, so the probe only reports how well the "
                     "class can be read linearly at each size; no gate.")
    return notes
