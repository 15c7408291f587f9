"""What every loader shares: the spec, the targets of a manifest, the sample order, sharding.

Both loaders (torchvision and DALI) take their order and their shard from here, so for one
spec they visit the same images on the same rank in the same order; only the pixels differ
(within the tolerance tests/test_dali.py states).

Sharding follows DALI's file reader and iterator (``shard_id``/``num_shards``,
``pad_last_batch=True``, ``reader_name``): rank ``r`` of ``W`` reads the contiguous slice
``[N*r//W, N*(r+1)//W)`` of the epoch's order, and all ranks yield the same number of
batches. Training: ``floor(floor(N/W)/B)`` full batches, the smallest shard's count (DALI's
``LastBatchPolicy.DROP``), so a rank never needs a padded sample. Evaluation:
``ceil(ceil(N/W)/B)`` batches (``LastBatchPolicy.PARTIAL``); the reader pads short shards by
repeating their last sample and the loaders drop that padding again, so each image counts
exactly once over all ranks and a rank whose samples end early gets empty batches, never
duplicates.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd
import torch

from pipeline.loaders.seeds import sample_seed

#: AVA rating-histogram columns (votes for scores 1..10); a manifest with these and no
#: ``label`` column is an IQA manifest.
AVA_COLUMNS = [f"p{k}" for k in range(1, 11)]


@dataclass(frozen=True)
class LoaderSpec:
    """How to load one split; mirrors ``loader`` in params.yaml plus the run's resolution.

    ``workers`` is the torch DataLoader's worker processes and DALI's thread count (at least
    one). ``shard`` is ``(rank, world_size)``; ``None`` reads it from the torchrun environment
    (``RANK``, ``WORLD_SIZE``; one process when unset). ``prefetch`` is how many batches a
    loader prepares ahead (DALI's ``prefetch_queue_depth``; torch's ``prefetch_factor``, which
    counts per worker).
    """

    size: int
    batch_size: int
    workers: int
    train: bool
    scale: tuple[float, float] = (0.08, 1.0)
    crop: float = 0.875
    interpolation: str = "bilinear"
    flip: bool = True
    seed: int = 0
    shard: tuple[int, int] | None = None
    prefetch: int = 2


T = TypeVar("T")


class Waited:
    """Seconds this process's loops spent waiting for loaders' batches (the ``data`` share of
    a stage's time in its timing line, :func:`pipeline.cli.timing_line`)."""

    seconds = 0.0


def timed(batches: Iterable[T]) -> Iterator[T]:
    """Yield from ``batches``, adding the time spent waiting for each to :class:`Waited`."""
    source = iter(batches)
    while True:
        start = time.perf_counter()
        try:
            item = next(source)
        except StopIteration:
            return
        finally:
            Waited.seconds += time.perf_counter() - start
        yield item


def is_ava(manifest: pd.DataFrame) -> bool:
    """True for an IQA manifest (rating histograms ``p1..p10``, no ``label``)."""
    return "label" not in manifest.columns and all(c in manifest.columns for c in AVA_COLUMNS)


def manifest_targets(manifest: pd.DataFrame) -> torch.Tensor:
    """Targets of every manifest row, indexed by row position.

    Classification: int64 ``(N,)`` from ``label``. AVA: float32 ``(N, 10)`` rating
    histograms normalised to sum to one (idempotent for already normalised rows).
    """
    if "label" in manifest.columns:
        return torch.tensor(manifest["label"].to_numpy(dtype=np.int64))
    if is_ava(manifest):
        votes = manifest[AVA_COLUMNS].to_numpy(dtype=np.float64)
        totals = votes.sum(axis=1, keepdims=True)
        if (totals <= 0).any():
            row = int(np.flatnonzero(totals[:, 0] <= 0)[0])
            raise ValueError(f"manifest row {row} ({manifest['path'].iloc[row]}) has no votes "
                             f"in {AVA_COLUMNS[0]}..{AVA_COLUMNS[-1]}; drop it from the manifest")
        return torch.as_tensor(votes / totals, dtype=torch.float32)
    raise ValueError(f"manifest has neither a 'label' column nor the AVA histogram columns "
                     f"{AVA_COLUMNS[0]}..{AVA_COLUMNS[-1]}; columns: {list(manifest.columns)}")


def empty_batch(size: int, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch an evaluating rank yields after its shard ended (uint8 images, no rows)."""
    return (torch.empty(0, 3, size, size, dtype=torch.uint8),
            targets.new_empty((0, *targets.shape[1:])))


def env_shard() -> tuple[int, int]:
    """(rank, world_size) from torchrun's environment; (0, 1) outside torchrun."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def local_rank() -> int:
    """This process's GPU index on its node (torchrun's ``LOCAL_RANK``; 0 outside torchrun)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def resolve_shard(spec: LoaderSpec) -> tuple[int, int]:
    """The spec's (rank, world_size), checked."""
    rank, world = spec.shard if spec.shard is not None else env_shard()
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"invalid shard: rank {rank} of world size {world}")
    return rank, world


def epoch_order(n: int, spec: LoaderSpec) -> np.ndarray:
    """Manifest row indices in visiting order: a permutation fixed by ``spec.seed`` when
    training (the same on every rank, so the shards partition it), manifest order otherwise."""
    if spec.train:
        return np.random.default_rng([spec.seed, n]).permutation(n)
    return np.arange(n)


def shard_range(n: int, rank: int, world: int) -> tuple[int, int]:
    """[start, end) of ``rank``'s contiguous slice of ``n`` samples (DALI's split)."""
    return n * rank // world, n * (rank + 1) // world


def batches_per_rank(n: int, world: int, batch_size: int, train: bool) -> int:
    """Batches each rank yields (the same on every rank): full batches of the smallest shard
    when training, batches of the largest shard (the last one partial) when evaluating."""
    if train:
        return n // world // batch_size
    return math.ceil(math.ceil(n / world) / batch_size)


@contextlib.contextmanager
def seeded_sample(seed: int, index: int) -> Iterator[None]:
    """Run one sample's augmentation on torch's global generator seeded for it (torchvision's
    v2 transforms draw from the global generator), on one intra-op thread, and put the
    caller's generator state and thread count back afterwards.

    (``torch.random.fork_rng`` does the same, 50x slower. One image is too small to split
    across threads: in the main process the trainer's intra-op threads made each transform
    10-30x slower on a busy 2-core machine.)
    """
    generator, threads = torch.default_generator, torch.get_num_threads()
    state = generator.get_state()
    generator.manual_seed(sample_seed(seed, index))
    torch.set_num_threads(1)
    try:
        yield
    finally:
        generator.set_state(state)
        torch.set_num_threads(threads)
