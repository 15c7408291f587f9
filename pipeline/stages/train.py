"""Stage ``train``: train and evaluate one classification run (backbone x resizer mode)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd
import torch

from pipeline.checkpoint import load_checkpoint, save_checkpoint
from pipeline.classification import train_run
from pipeline.config import ConfigError, get_run, load_params
from pipeline.io import write_csv, write_json
from pipeline.resume import ResumeState, file_digest, fingerprint

log = logging.getLogger(__name__)
NAME = "train"
HELP = "train one run (baseline, fixed-resizer fine-tune or learned resizer) and evaluate it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbone", required=True, help="timm model name")
    parser.add_argument("--mode", required=True, help="'default' or a finetune/learned mode")
    parser.add_argument("--manifests", type=Path, required=True, help="prepare stage's output")
    parser.add_argument("--init", type=Path, help="checkpoint the backbone starts from")
    parser.add_argument("--out", type=Path, required=True, help="run directory (model.pt...)")
    parser.add_argument("--metrics", type=Path, required=True, help="final metrics JSON")


def pick_device() -> torch.device:
    """The GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    torch.set_num_threads(params["train"]["cpu_threads"])
    run = get_run(params, args.backbone, args.mode)
    if bool(run.init) != bool(args.init):
        raise ConfigError(f"run {run.name} starts from {run.init or 'scratch'}: "
                          f"{'pass' if run.init else 'do not pass'} --init")
    manifests = {s: pd.read_csv(args.manifests / f"{s}.csv") for s in ("train", "val")}
    classes = pd.read_csv(args.manifests / "classes.csv")
    init = load_checkpoint(args.init) if args.init else None
    key = fingerprint(params, run.name, file_digest(args.init) if args.init else None,
                      file_digest(args.manifests / "train.csv"))
    resume = ResumeState(args.out / "resume.pt", key)
    result = train_run(run, params, manifests, len(classes), init, pick_device(), resume)
    meta = {"backbone": run.backbone, "num_classes": len(classes), "run": result.metrics,
            "wnids": classes["wnid"].tolist()}
    save_checkpoint(args.out / "model.pt", result.model, meta)
    write_csv(args.out / "history.csv", pd.DataFrame(result.history))
    write_json(args.metrics, result.metrics)
    resume.clear()
    log.info("%s: top-1 err %.2f%%, top-5 err %.2f%%, %.4f GMACs", run.name,
             result.metrics["top1_err"], result.metrics["top5_err"], result.metrics["gmacs"])
