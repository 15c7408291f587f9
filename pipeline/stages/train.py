"""Stage ``train``: train and evaluate one run (task, backbone, mode, seed) of any family.

One command everywhere. With more than one visible GPU (or ``PIPELINE_NPROC=N``) the stage
starts N data-parallel processes of :func:`train_worker` itself (:mod:`pipeline.training.distributed`);
otherwise it trains in this process. Configuration, GPU and process-count errors stop it
before anything is launched.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import torch

from pipeline.core.errors import Interrupted
from pipeline.core.io import (ensure_free_space, file_digest, reporting_disk_full, write_csv,
                              write_json)
from pipeline.core.manifests import check_files, read_manifest
from pipeline.loaders.decoded import read_decoded
from pipeline.models import check_models
from pipeline.models.weights import check_source
from pipeline.params.config import ConfigError, load_params
from pipeline.params.runs import CHECKPOINT, HISTORY, TASKS, TIMM, Run, get_run, weights_file
from pipeline.training import distributed
from pipeline.training.checkpoint import load_checkpoint, save_checkpoint
from pipeline.training.device import check_gpu, select_accel
from pipeline.training.distributed import per_process_batch
from pipeline.training.live import LiveLog
from pipeline.training.loop import state_nbytes
from pipeline.training.resume import ResumeState, fingerprint
from pipeline.training.runner import Inits, train_run
from pipeline.training.tasks import get_task

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--backbone", required=True, help="timm model name")
    parser.add_argument("--mode", required=True, help="a mode of the task in params.yaml")
    parser.add_argument("--seed", type=int, required=True, help="one of params.yaml's seeds")
    parser.add_argument("--manifests", type=Path, required=True, help="prepare stage's output")
    parser.add_argument("--init", type=Path, help="checkpoint the model starts from")
    parser.add_argument("--resizer-init", type=Path,
                        help="checkpoint the learned resizer starts from (transfer runs)")
    parser.add_argument("--out", type=Path,
                        help="run directory (model.pt...; default: data/runs/<run>)")
    parser.add_argument("--metrics", type=Path,
                        help="final metrics JSON (default: results/metrics/<run>.json)")
    parser.add_argument("--live", type=Path, help="CSV of the per-epoch metrics, rewritten "
                                                  "every epoch (default: results/live/<run>.csv)")
    parser.add_argument("--no-live", action="store_true",
                        help="write no per-epoch CSV (the GPU check's runs; history.csv still "
                             "holds every epoch)")


def checked_run(params: dict, args: argparse.Namespace) -> Run:
    """The run the arguments name (output paths not given are set to the run's own);
    ConfigError when ``--init``/``--resizer-init`` do not fit."""
    run = get_run(params, args.task, args.backbone, args.mode, args.seed)
    args.out, args.metrics = args.out or run.dir, args.metrics or run.metrics_path
    args.live = args.live or run.live_file
    for flag, ref, given in (("--init", run.init, args.init),
                             ("--resizer-init", run.resizer_init, args.resizer_init)):
        if bool(ref) != bool(given):
            what = f"{ref.task}/{ref.backbone}/{ref.mode}" if ref else "nothing"
            raise ConfigError(f"run {run.name} starts from {what}: "
                              f"{'pass' if ref else 'do not pass'} {flag}")
    return run


def main(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    check_models(params, str(args.params))
    checked_run(params, args)
    check_gpu()
    nproc = distributed.process_count()
    per_process_batch(params["loader"]["batch_size"], nproc)
    if nproc > 1 and not distributed.in_worker():
        distributed.launch(train_worker, (args,), nproc)
    else:
        train_worker(args)


def train_worker(args: argparse.Namespace) -> None:
    """Train the run in this process (one of several, or the only one); rank 0 writes."""
    params = load_params(args.params)
    run = checked_run(params, args)
    dist = distributed.from_env()
    if dist.enabled:  # also under an outside `torchrun -m pipeline train`: one writer per log
        distributed.setup_worker_logging(dist.rank, args.log, logging.getLogger().level)
    # N processes share train.cpu_threads (on a GPU the host threads matter little).
    torch.set_num_threads(max(1, params["train"]["cpu_threads"] // dist.world))
    accel = select_accel(dist.local_rank)
    distributed.init(dist, accel)
    try:
        task = get_task(run.task)
        manifests = {s: read_manifest(args.manifests, s) for s in task.splits}
        for split, frame in manifests.items():
            check_files(frame, args.manifests / f"{split}.csv")
        decoded = {s: read_decoded(args.manifests, s, frame) for s, frame in manifests.items()}
        outputs = task.num_outputs(args.manifests)
        if run.loads_weights:  # before anything is read or written
            check_source(run.backbone, run.weights, outputs)
        inits = Inits(load_checkpoint(args.init) if args.init else None,
                      load_checkpoint(args.resizer_init) if args.resizer_init else None)
        starts = [args.init, args.resizer_init,
                  weights_file(run.weights) if run.loads_weights and run.weights != TIMM else None]
        key = fingerprint(params, run.name, *(file_digest(p) for p in starts if p is not None),
                          file_digest(args.manifests / f"{task.splits[0]}.csv"))
        resume = ResumeState(args.out / "resume.pt", key)
        live = LiveLog(args.live) if dist.main and not args.no_live else None
        with reporting_disk_full(resume.path), interrupted_note(resume):
            result = train_run(run, params, manifests, outputs, inits, accel, resume, dist,
                               on_epoch=live, decoded=decoded)
        distributed.check_in_step(result.model, dist)
        if dist.main:
            meta = {"backbone": run.backbone, "num_classes": outputs, "run": result.metrics}
            if task.name == "classification":
                meta["wnids"] = read_manifest(args.manifests, "classes")["wnid"].tolist()
            write_outputs(args, result.model, meta, result.history, result.metrics)
            resume.clear()
            log.info("%s: %s, %.4f GMACs", run.name, ", ".join(
                f"{k} {result.metrics[k]:.4g}" for k in task.metrics), result.metrics["gmacs"])
    finally:
        distributed.shutdown(dist)


@contextlib.contextmanager
def interrupted_note(resume: ResumeState) -> Iterator[None]:
    """Ctrl-C during training: :class:`Interrupted` saying where a rerun resumes."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(resume.rerun_note()) from None


def write_outputs(args: argparse.Namespace, model: torch.nn.Module, meta: dict,
                  history: list[dict], metrics: dict) -> None:
    """model.pt, history.csv and the metrics JSON, each atomically; the metrics last, so a
    run whose metrics exist is complete."""
    ensure_free_space(args.out, state_nbytes(model), f"the checkpoint {CHECKPOINT}")
    with reporting_disk_full(args.out / CHECKPOINT):
        save_checkpoint(args.out / CHECKPOINT, model, meta)
    with reporting_disk_full(args.out / HISTORY):
        write_csv(args.out / HISTORY, pd.DataFrame(history))
    with reporting_disk_full(args.metrics):
        write_json(args.metrics, metrics)
