"""Data-parallel training over several GPUs: one process per GPU, started by the stage itself.

The stage command is the same on the CPU, one GPU or eight (``python -m pipeline train ...``),
in both engines. The process count is a resource of the machine, not a param, so it never
changes what DVC or Snakemake consider the result's identity:

* ``PIPELINE_NPROC=N`` when set (on the CPU the processes talk over gloo: that is how the
  tests run DDP), else one process per visible GPU (``CUDA_VISIBLE_DEVICES``, a SLURM
  allocation). One process needs no launcher.
* More than one: :func:`launch` runs the stage's worker in N processes with torch's elastic
  launcher, standalone (a local rendezvous on a free port), as
  ``torchrun --standalone --nproc-per-node=N`` would. ``torchrun -m pipeline train ...`` works
  too: a process that finds ``LOCAL_RANK`` set is a worker and launches nothing.

What N processes keep equal to one (up to float reduction order):

* ``loader.batch_size`` is the global batch: each process loads ``batch_size / N`` images per
  step, so the learning rate, the steps per epoch and the schedule are params.yaml's whatever
  the GPU count. DDP averages the gradients, which is the gradient of the global batch's mean.
* Training shards are padded so every process runs the same number of batches (checked
  before every epoch: a mismatch would hang DDP).
* Validation: each process evaluates its shard (no padding at eval) and the sums are added
  up, so every image counts exactly once.
* Only rank 0 writes (resume state, checkpoint, history, metrics), atomically. After training
  a digest of every process's weights and buffers is compared (:func:`check_in_step`).

What differs: BatchNorm normalises each process's ``batch_size / N`` images (not synchronised;
its running statistics are rank 0's, broadcast by DDP every step and after every epoch).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.core import errors
from pipeline.core.errors import ConfigError, DeviceError, PipelineError
from pipeline.core.io import disk_full_message, is_disk_full
from pipeline.training.device import Accel, gpu_count

log = logging.getLogger(__name__)

NPROC_ENV = "PIPELINE_NPROC"


@dataclass(frozen=True)
class Dist:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that logs progress and writes outputs."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """More than one process (collectives needed)."""
        return self.world > 1


SINGLE = Dist()


def in_worker(env: Mapping[str, str] = os.environ) -> bool:
    """True inside a process started by torchrun or :func:`launch`."""
    return "LOCAL_RANK" in env and "WORLD_SIZE" in env


def from_env(env: Mapping[str, str] = os.environ) -> Dist:
    """This process's rank from the launcher's environment (rank 0 of 1 outside one)."""
    if not in_worker(env):
        return SINGLE
    return Dist(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"]))


def process_count(env: Mapping[str, str] = os.environ) -> int:
    """How many training processes: the launcher's world size inside a worker, else
    ``PIPELINE_NPROC``, else one per visible GPU (at least one)."""
    if in_worker(env):
        return int(env["WORLD_SIZE"])
    gpus = gpu_count()
    value = env.get(NPROC_ENV, "").strip()
    if not value:
        return max(1, gpus)
    if not value.isdigit() or int(value) < 1:
        raise DeviceError(f"{NPROC_ENV}={value!r} is not a process count; set a positive "
                          f"integer or unset it (one process per visible GPU)")
    if gpus and int(value) > gpus:
        raise DeviceError(f"{NPROC_ENV}={value} but only {gpus} GPU(s) are visible; lower it "
                          f"or make more GPUs visible (CUDA_VISIBLE_DEVICES, SLURM --gpus)")
    return int(value)


def per_process_batch(batch_size: int, world: int) -> int:
    """Each process's share of the global batch ``loader.batch_size``."""
    if batch_size % world:
        below, above = batch_size // world * world, -(-batch_size // world) * world
        raise ConfigError(
            f"loader.batch_size = {batch_size} is the global batch, split over {world} "
            f"processes, so it must be a multiple of {world}: use a GPU count that divides "
            f"it (CUDA_VISIBLE_DEVICES or {NPROC_ENV}), or set batch_size to "
            f"{below or above} or {above} (a new batch size changes the results)")
    return batch_size // world


# ---------------------------------------------------------------------------------------------
# Launching


def launch(fn: Callable[..., None], args: tuple[Any, ...], nproc: int) -> None:
    """Run ``fn(*args)`` in ``nproc`` local processes and wait for all of them.

    A :class:`PipelineError` (or a full disk) in any process is raised here again with its
    message, so the CLI reports it like a one-process error; other failures raise torch's
    ``ChildFailedError`` with the worker's traceback.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc,
                          run_id=f"pipeline-{uuid.uuid4()}", rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.5,
                          start_method="spawn")
    log_file = reopen_log_files_for_append()
    level = logging.getLogger().getEffectiveLevel()
    error_dir = Path(tempfile.mkdtemp(prefix="pipeline-workers-"))
    # The launcher logs every worker failure with its traceback; launch() reports them instead.
    for name in ("torch.distributed.elastic", "torch.multiprocessing"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    log.info("starting %d training processes (torch elastic, standalone)", nproc)
    try:
        elastic_launch(config, _worker_entry)(fn, args, log_file, level, str(error_dir))
    except ChildFailedError:
        reported = sorted(error_dir.glob("rank*.json"),
                          key=lambda p: int(p.stem.removeprefix("rank")))
        if not reported:
            raise
        failure = json.loads(reported[0].read_text())
        kind = getattr(errors, failure["type"], PipelineError)
        raise kind(failure["message"]) from None
    finally:
        shutil.rmtree(error_dir, ignore_errors=True)


def reopen_log_files_for_append() -> str | None:
    """Make the root logger's log files append from now on (rank 0 writes to the same file
    while the launcher waits); returns the first file's path, if any."""
    path = None
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.close()  # reopened at the next record, in append mode
            handler.mode = "a"
            path = path or handler.baseFilename
    return path


def _worker_entry(fn: Callable[..., None], args: tuple[Any, ...], log_file: str | None,
                  level: int, error_dir: str) -> None:
    """What each launched process runs: logging, then ``fn``; a user-facing error is written
    for :func:`launch` and the process exits with status 2."""
    from pipeline.cli import line_per_update_stderr  # a worker is an entry point too

    rank = int(os.environ["RANK"])
    line_per_update_stderr()
    setup_worker_logging(rank, log_file, level)
    try:
        fn(*args)
    except (PipelineError, OSError) as exc:
        if isinstance(exc, OSError) and not is_disk_full(exc):
            raise
        if isinstance(exc, PipelineError):
            kind, message = type(exc).__name__, str(exc)
        else:
            kind, message = "DiskFullError", disk_full_message(exc, Path.cwd())
        (Path(error_dir) / f"rank{rank}.json").write_text(
            json.dumps({"type": kind, "message": message}))
        raise SystemExit(2) from None


def setup_worker_logging(rank: int, log_file: str | Path | None, level: int) -> None:
    """Rank 0 logs like the stage (stderr and, appending, its log file); other ranks only
    warnings, to stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if rank == 0 and log_file:
        handlers.append(logging.FileHandler(log_file, mode="a"))
    logging.basicConfig(level=level if rank == 0 else max(level, logging.WARNING),
                        handlers=handlers, force=True,
                        format=f"%(asctime)s %(levelname)s %(name)s [rank {rank}]: %(message)s")


# ---------------------------------------------------------------------------------------------
# Inside the processes


def init(dist: Dist, accel: Accel) -> None:
    """Join the process group (NCCL between GPUs, gloo between CPU processes)."""
    if not dist.enabled:
        return
    if accel.device.type == "cuda":
        torch.distributed.init_process_group("nccl", device_id=accel.device)
    else:
        torch.distributed.init_process_group("gloo")
    log.info("process %d of %d on %s", dist.rank, dist.world, accel.device)


def shutdown(dist: Dist) -> None:
    """Leave the process group."""
    if dist.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def wrap(model: nn.Module, accel: Accel, dist: Dist) -> nn.Module:
    """``model`` in DistributedDataParallel when there are several processes."""
    if not dist.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [accel.device.index] if accel.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def all_sum(values: Sequence[float], dist: Dist, device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all processes (float64: exact for counts)."""
    if not dist.enabled:
        return list(values)
    where = device if device.type == "cuda" else torch.device("cpu")
    tensor = torch.tensor(list(values), dtype=torch.float64, device=where)
    torch.distributed.all_reduce(tensor)
    return tensor.tolist()


def gather(value: Any, dist: Dist) -> list[Any]:
    """``value`` of every process, by rank."""
    if not dist.enabled:
        return [value]
    values: list[Any] = [None] * dist.world
    torch.distributed.all_gather_object(values, value)
    return values


def check_same_length(loader: Any, dist: Dist, what: str) -> None:
    """Stop before an epoch in which processes would run different numbers of batches (DDP
    would hang at the first missing all-reduce)."""
    if not dist.enabled or not hasattr(loader, "__len__"):
        return
    counts = gather(len(loader), dist)
    if len(set(counts)) > 1:
        raise RuntimeError(f"processes would run different numbers of {what}: {counts} (by "
                           f"rank); the loader's sharding must pad every shard to one length")


def sync_buffers(model: nn.Module, dist: Dist) -> None:
    """Give every process rank 0's buffers (BatchNorm running statistics), which the last
    training step updated from each process's own batch."""
    if not dist.enabled:
        return
    for buffer in model.buffers():
        torch.distributed.broadcast(buffer, src=0)


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict: every weight and buffer (names, dtypes, shapes and bytes,
    whatever the device or memory layout)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{flat.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_in_step(model: nn.Module, dist: Dist) -> str:
    """Compare every process's weights and buffers; returns their digest ("" for one
    process, which has nothing to compare)."""
    if not dist.enabled:
        return ""
    digest = state_digest(model.state_dict())
    digests = gather(digest, dist)
    if len(set(digests)) > 1:
        raise RuntimeError(f"training processes ended with different weights (digests by rank: "
                           f"{[d[:12] for d in digests]}); DDP lost sync")
    log.info("all %d processes in step: weights digest %s", dist.world, digest[:16])
    return digest
