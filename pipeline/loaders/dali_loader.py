"""DALI loader: decode and resize on the GPU (``mixed`` decoder); without a GPU, DALI decodes
and torchvision resizes (:mod:`pipeline.loaders.hybrid_loader`).

The all-DALI pipeline also runs on the CPU (``device="cpu"``), where the loader benchmark keeps
it for comparison: there DALI's resize costs more than the decode it follows.

``nvidia.dali`` is imported only when a loader is built, so importing this module (and
``pipeline.loaders``) is cheap and works where DALI is not installed.

Graph (every operator on ``device``; decoding ``mixed`` on a GPU)::

    readers.file(files, labels=row index, shard_id, num_shards, pad_last_batch, name=Reader)
      train: decoders.image_random_crop(scale, ratio 3/4..4/3) -> resize(S x S)
      eval:  decoders.image -> resize(the region that the torchvision eval transform's
             shorter-side resize + centre crop keeps, S x S, same scale and sample positions)
      (each resize two passes, columns then rows, through uint8 as torchvision's:
      :func:`resize_separable`)
      -> crop_mirror_normalize(random mirror when training, CHW uint8; normalisation
         follows on the device, :func:`pipeline.loaders.transforms.normalize`)

Targets do not travel through DALI: the reader's integer "label" is the manifest row, and
targets (class ids, or AVA's float histograms) are looked up from it after each batch. A row
index is exactly what ``fn.readers.file`` carries well (an int per file), it survives
sharding, padding and shuffling unchanged, and it needs neither a second reader kept in step
nor an ``external_source`` callback (which would serialise on the Python GIL).

Shuffling is a permutation of the file list made before the reader sees it (the same one the
torch loader uses, fixed by ``spec.seed``), because the reader's own ``random_shuffle`` only
shuffles inside a 1024-sample buffer. Train loaders build a fresh pipeline for every pass, so
the same spec gives the same batches; eval loaders keep theirs (see :meth:`DaliLoader.__iter__`).
Each rank's reader sticks to its shard.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from pipeline.loaders.common import (LoaderSpec, batches_per_rank, epoch_order, local_rank,
                                     manifest_targets, resolve_shard, shard_range)
from pipeline.loaders.hybrid_loader import build_hybrid_loader
from pipeline.loaders.transforms import eval_resize_size

log = logging.getLogger(__name__)

DEVICES = ("cpu", "gpu")
#: Where a DALI loader can run: the all-DALI pipeline on a device, or DALI's decoder with
#: torchvision's resize (the CPU default).
PLACES = (*DEVICES, "hybrid")
#: torchvision's RandomResizedCrop default aspect-ratio range.
RATIO = (3 / 4, 4 / 3)


def gpu_present() -> bool:
    """True when DALI can run on a GPU here (torch sees a CUDA device)."""
    return torch.cuda.is_available()


def gpu_index() -> int:
    """This process's GPU: torchrun's ``LOCAL_RANK`` among the visible devices, or torch's
    current device when the launcher shows each process only its own GPU."""
    rank = local_rank()
    return rank if rank < torch.cuda.device_count() else torch.cuda.current_device()


def _interp(name: str):
    from nvidia.dali import types
    interps = {"bilinear": types.INTERP_LINEAR, "bicubic": types.INTERP_CUBIC}
    if name not in interps:
        raise ValueError(f"interpolation {name!r} has no DALI equivalent; "
                         f"allowed: {', '.join(interps)}")
    return interps[name]


@dataclass(frozen=True)
class Window:
    """Per-sample input bounds (float DataNodes, input pixels) of an eval crop: rows
    ``top``..``bottom`` and columns ``left``..``right`` of an image ``height`` rows tall."""

    top: Any
    bottom: Any
    left: Any
    right: Any
    height: Any


def _eval_crop_window(jpegs, shorter: int, size: int) -> Window:
    """The input region that, resized to ``size`` x ``size``, gives exactly the centre crop of
    the image resized to shorter side ``shorter``: the torchvision eval transform, computed
    without resampling the pixels the crop throws away.

    The resized size is :func:`~pipeline.loaders.transforms.eval_resized_hw` (longer side
    ``floor(shorter * long / short)``), the crop's corner
    :func:`~pipeline.loaders.transforms.centre_crop_anchor` (halves rounded up), both from the
    encoded image's header (EXIF orientation applied, as the decoder does) in float64. The
    region keeps the full resize's scale (input px per output px) and sample positions, and
    the filter still reads pixels outside it, so only the cropped-away pixels are not computed
    (about 40% of the resize work at 224 px).
    """
    from nvidia.dali import fn, types
    from nvidia.dali import math as dmath

    shape = fn.peek_image_shape(jpegs, dtype=types.FLOAT64)  # (H, W, C) on the CPU
    height, width = shape[0], shape[1]
    portrait = width <= height  # boolean DataNode, 0/1 in arithmetic
    new_long = dmath.floor(shorter * dmath.max(height, width) / dmath.min(height, width))
    out_w = portrait * shorter + (1 - portrait) * new_long
    out_h = portrait * new_long + (1 - portrait) * shorter
    top, left = dmath.floor((out_h - size + 1) / 2), dmath.floor((out_w - size + 1) / 2)
    scale_y, scale_x = height / out_h, width / out_w

    def as_float(node):
        return fn.cast(node, dtype=types.FLOAT)

    return Window(top=as_float(top * scale_y), bottom=as_float((top + size) * scale_y),
                  left=as_float(left * scale_x), right=as_float((left + size) * scale_x),
                  height=as_float(height))


def resize_separable(images, device: str, size: int, interp, window: Window | None = None):
    """``images`` resized to ``size`` x ``size`` (the ``window`` of each, when given) in two
    passes, columns first, rounded to uint8 between them.

    That is the reference's arithmetic: torchvision resizes uint8 images with separable
    kernels, horizontal pass first, and keeps the intermediate image in 8 bits, so where the
    cubic kernel's negative lobes overshoot at a hard edge the overshoot is clipped before the
    vertical pass. One DALI resize keeps a float intermediate instead, which put bicubic up
    to 17 levels from the reference at saturated edges (bilinear, without negative lobes,
    stayed within 1); two passes through uint8 bring both within 1 level.
    """
    from nvidia.dali import fn

    common = {"device": device, "interp_type": interp, "antialias": True}
    if window is None:  # columns to ``size``, rows kept ("stretch": a 0 extent is not scaled)
        wide = fn.resize(images, size=[0, size], mode="stretch", **common)
        return fn.resize(wide, size=[size, size], **common)
    zero = 0.0 * window.height  # a per-sample 0: fn.stack takes data nodes
    wide = fn.resize(images, size=[0, size], mode="stretch", roi_relative=False,
                     roi_start=fn.stack(zero, window.left),
                     roi_end=fn.stack(window.height, window.right), **common)
    return fn.resize(wide, size=[size, size], roi_relative=False,
                     roi_start=fn.stack(window.top, zero),
                     roi_end=fn.stack(window.bottom, zero + size), **common)


def build_pipeline(files: list[str], rows: list[int], spec: LoaderSpec, device: str,
                   rank: int, world: int):
    """The DALI pipeline for one pass over ``files`` (already in visiting order)."""
    from nvidia.dali import fn, pipeline_def, types

    decode_device = "mixed" if device == "gpu" else "cpu"
    interp = _interp(spec.interpolation)

    @pipeline_def(batch_size=spec.batch_size, num_threads=max(1, spec.workers),
                  device_id=gpu_index() if device == "gpu" else None,
                  seed=spec.seed % (2**31 - 1), prefetch_queue_depth=spec.prefetch)
    def graph():
        jpegs, row = fn.readers.file(files=files, labels=rows, shard_id=rank, num_shards=world,
                                     random_shuffle=False, pad_last_batch=True,
                                     stick_to_shard=True, name="Reader")
        mirror = 0
        if spec.train:
            images = fn.decoders.image_random_crop(
                jpegs, device=decode_device, output_type=types.RGB,
                random_area=list(spec.scale), random_aspect_ratio=list(RATIO), num_attempts=10)
            images = resize_separable(images, device, spec.size, interp)
            if spec.flip:
                mirror = fn.random.coin_flip(probability=0.5)
        else:
            window = _eval_crop_window(jpegs, eval_resize_size(spec.size, spec.crop), spec.size)
            images = fn.decoders.image(jpegs, device=decode_device, output_type=types.RGB)
            images = resize_separable(images, device, spec.size, interp, window)
        images = fn.crop_mirror_normalize(images, device=device, dtype=types.UINT8,
                                          output_layout="CHW", mirror=mirror)
        return images, row

    return graph()


class DaliLoader:
    """Iterable of ``(images, targets)`` batches from a DALI pipeline on ``device``.

    Images are uint8 ``(B, 3, S, S)`` on the pipeline's device (the GPU ``LOCAL_RANK``, or
    the CPU); targets stay on the CPU. Eval passes drop the reader's padding
    (``LastBatchPolicy.PARTIAL``), so each image of this rank's shard comes exactly once.
    """

    def __init__(self, manifest: pd.DataFrame, spec: LoaderSpec, device: str):
        if device not in DEVICES:
            raise ValueError(f"DALI device {device!r}; allowed: {', '.join(DEVICES)}")
        self.spec, self.device = spec, device
        self.targets = manifest_targets(manifest)
        order = epoch_order(len(manifest), spec)
        paths = manifest["path"].to_numpy()
        self.files = [os.path.abspath(p) for p in paths[order]]
        self.rows = order.tolist()
        self.rank, self.world = resolve_shard(spec)
        start, end = shard_range(len(manifest), self.rank, self.world)
        self.shard_size = end - start
        self.batches = batches_per_rank(len(manifest), self.world, spec.batch_size, spec.train)
        self._kept = None  # an eval pipeline's iterator, ready for the next pass

    def __len__(self) -> int:
        return self.batches

    def _start(self):
        """A new pipeline and its iterator, positioned at the start of this rank's shard."""
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        pipe = build_pipeline(self.files, self.rows, self.spec, self.device, self.rank,
                              self.world)
        policy = LastBatchPolicy.DROP if self.spec.train else LastBatchPolicy.PARTIAL
        log.debug("DALI %s pipeline: %d files, shard %d/%d, %d batches", self.device,
                  len(self.files), self.rank, self.world, self.batches)
        return DALIGenericIterator([pipe], ["images", "row"], reader_name="Reader",
                                   last_batch_policy=policy, auto_reset=False)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.batches == 0:
            return
        # An eval loader keeps its pipeline between passes (the reader sticks to its shard and
        # has no randomness, so every pass is the same): the batches it prefetched past the
        # end of one pass start the next, and it is built once. A train loader starts afresh
        # each pass, so a pass is a function of the spec alone.
        iterator, self._kept = self._kept, None
        if iterator is None or self.spec.train:
            iterator = self._start()
        seen = 0
        for (out,) in iterator:
            rows = out["row"].view(-1).cpu().long()  # (B,) manifest rows
            seen += len(rows)
            yield out["images"], self.targets[rows]
        expected = (self.batches * self.spec.batch_size if self.spec.train else self.shard_size)
        if seen != expected:
            raise RuntimeError(f"DALI yielded {seen} samples on rank {self.rank}/{self.world}, "
                               f"expected {expected}: the reader's padding was not handled")
        if not self.spec.train:  # a complete pass: the next one may continue from here
            iterator.reset()
            self._kept = iterator


def build_dali_loader(manifest: pd.DataFrame, spec: LoaderSpec, device: str | None = None):
    """A DALI loader on ``device``: "gpu" or "cpu" (the all-DALI pipeline) or "hybrid" (DALI
    decodes, torchvision resizes); ``None``: the GPU when there is one, else hybrid."""
    if device is None:
        device = "gpu" if gpu_present() else "hybrid"
    if device not in PLACES:
        raise ValueError(f"DALI device {device!r}; allowed: {', '.join(PLACES)}")
    if device == "hybrid":
        return build_hybrid_loader(manifest, spec)
    return DaliLoader(manifest, spec, device)
