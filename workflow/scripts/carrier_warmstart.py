"""Can the paper's resizer learn to carry the fine cue when its backbone already reads it?

A diagnostic beside the DAG (it writes nothing under results/). Under the paper's protocol the
learned resizer starts next to the `default` backbone, which never needed the fine cue, and
recovers none of the gap (README, "What the default run shows"). Here the same protocol (fresh
zero-initialised resizer, fine-tuning lr, the run's recipe) starts instead from the backbone
of the `band_energy` baseline, which learned to read fine detail carried as colour offsets.
If the resizer now learns to carry the cue, the failure under the paper's protocol is one of
discovery (no gradient toward a cue the backbone ignores), not of what the resizer can
represent or learn. ``--control`` runs the equal-epoch control instead: the `band_energy`
resizer itself, continued from its own run with the same lr and epochs. Needs the finished
`band_energy` runs (`dvc repro`).

    python workflow/scripts/carrier_warmstart.py --backbone resnet_tiny --epochs 24
    python workflow/scripts/carrier_warmstart.py --backbone resnet_tiny --epochs 24 --control
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.checkpoint import load_checkpoint  # noqa: E402
from pipeline.config import load_params  # noqa: E402
from pipeline.device import select_accel  # noqa: E402
from pipeline.runner import Inits, train_run  # noqa: E402
from pipeline.runs import MANIFESTS, Ref, get_run  # noqa: E402
from pipeline.tasks import get_task  # noqa: E402
from pipeline.trained import checkpoint_of_run  # noqa: E402

log = logging.getLogger("carrier_warmstart")
SOURCE = "band_energy"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet_tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--runs", type=Path, default=Path("data/runs"))
    parser.add_argument("--control", action="store_true",
                        help="continue the band_energy resizer instead of a learned one")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    params = load_params()
    torch.set_num_threads(params["train"]["cpu_threads"])
    learned = get_run(params, "classification", args.backbone, "learned", args.seed)
    source = get_run(params, "classification", args.backbone, SOURCE, args.seed)
    start = source if args.control else learned
    run = dataclasses.replace(start, family="fixed" if args.control else "learned",
                              mode=f"{SOURCE}_continued" if args.control else f"learned_from_{SOURCE}",
                              epochs=args.epochs, lr=learned.lr,
                              init=Ref("classification", args.backbone, SOURCE))
    manifests = Path(MANIFESTS["classification"])
    task = get_task("classification")
    frames = {s: pd.read_csv(manifests / f"{s}.csv") for s in task.splits}
    inits = Inits(load_checkpoint(checkpoint_of_run(args.runs, source)))
    result = train_run(run, params, frames, task.num_outputs(manifests), inits,
                       select_accel(0))
    keys = ["top1_err", "top5_err", "train_loss", "health", "diag_hf_transfer",
            "diag_residual_rms", "diag_residual_peak"]
    print(f"{run.name} ({args.epochs} epochs at lr {run.lr:g}, backbone from {SOURCE}): "
          + ", ".join(f"{k} {result.metrics[k]}" for k in keys if k in result.metrics))


if __name__ == "__main__":
    main()
