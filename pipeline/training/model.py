"""A run's model and its loaders' settings, below the training loop: what training, the
report and the benchmarks all build from a run (the report builds models through this module,
never through the loop).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pipeline.loaders import LoaderSpec
from pipeline.models import build_model, loader_kernel
from pipeline.params.runs import Run
from pipeline.training.distributed import SINGLE, Dist, per_process_batch


def loader_spec(run: Run, loader: dict[str, Any], *, train: bool, seed: int,
                dist: Dist = SINGLE) -> LoaderSpec:
    """Decode/resize settings of one split for this run (same implementation for both), for
    this process's shard: ``loader.batch_size`` is the global batch; the loaders resize with
    the run's resizer where they can apply it (:func:`~pipeline.models.loader_kernel`)."""
    return LoaderSpec(size=run.input_size,
                      batch_size=per_process_batch(loader["batch_size"], dist.world),
                      workers=loader["workers"], train=train, scale=tuple(loader["train_scale"]),
                      crop=loader["eval_crop"], interpolation=loader_kernel(run.resizer),
                      seed=seed, shard=(dist.rank, dist.world))


def new_model(run: Run, num_outputs: int) -> nn.Module:
    """The run's resizer + backbone, freshly initialised from the run's seed."""
    torch.manual_seed(run.seed)
    return build_model(run.backbone, run.resizer_spec, num_outputs,
                       published=run.weights is not None)
