"""Decode once: a small data set's images decoded to one uint8 array file, cropped and resized
from memory every epoch.

The embedded benchmarks' images are 80-192 px JPEGs: decoding them again every epoch cost more
CPU than the crop and resize that follow. For a manifest whose decoded pixels fit in
``loader.decoded_max_mb``, the stage that writes the manifest folder also writes
``<split>.decoded.npz`` beside ``<split>.csv``: every row's pixels as the reference loader
decodes them (:func:`~pipeline.loaders.torch_loader.read_rgb`: PIL, EXIF orientation applied,
RGB), concatenated, with each row's path and shape. A larger set (real ImageNet) gets no file
and its loaders decode from disk as before.

:class:`DecodedLoader` then gives the reference loader's batches bit for bit: the same order
and shards (:class:`~pipeline.loaders.torch_loader.ShardBatchSampler`), the same crop boxes and
flips (the reference's ``RandomResizedCrop`` draws from a generator seeded per sample),
the same pixels and the same torchvision resize kernel (tests/test_decoded.py checks it). It
runs where the loaders would run on the CPU; on a GPU, DALI decodes and resizes there instead.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchvision.transforms.v2.functional import resize_image
from tqdm import tqdm

from pipeline.core.errors import DatasetError
from pipeline.loaders.common import (LoaderSpec, batches_per_rank, empty_batch, manifest_targets,
                                     resolve_shard)
from pipeline.loaders.seeds import sample_seeds
from pipeline.loaders.torch_loader import ShardBatchSampler, read_rgb
from pipeline.loaders.transforms import INTERPOLATIONS, eval_transform

log = logging.getLogger(__name__)

SUFFIX = ".decoded.npz"


def decoded_path(folder: Path, split: str) -> Path:
    """Where split ``split`` of manifest folder ``folder`` keeps its decoded images."""
    return folder / f"{split}{SUFFIX}"


def decoded_nbytes(frame: pd.DataFrame) -> int:
    """Bytes the manifest's images take decoded (3 x width x height each; from its columns)."""
    return int((frame["width"].astype(np.int64) * frame["height"].astype(np.int64) * 3).sum())


@dataclass(frozen=True)
class DecodedImages:
    """Every row's decoded RGB pixels: row ``i`` is ``pixels[offsets[i]:offsets[i + 1]]``,
    shaped ``shapes[i]`` (height, width, 3)."""

    paths: np.ndarray
    shapes: np.ndarray
    offsets: np.ndarray
    pixels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, row: int) -> torch.Tensor:
        """Row ``row`` as a uint8 (3, H, W) tensor (a view, no copy)."""
        height, width = (int(v) for v in self.shapes[row])
        flat = self.pixels[self.offsets[row]:self.offsets[row + 1]]
        return torch.from_numpy(flat.reshape(height, width, 3)).permute(2, 0, 1)

    @cached_property
    def tensors(self) -> list[torch.Tensor]:
        """Every row's :meth:`image`, made once (a loader is built every epoch)."""
        return [self.image(row) for row in range(len(self))]


def decode_all(paths: list[str], write_dir: Path | None = None,
               out_dir: Path | None = None) -> DecodedImages:
    """Decode every path as the reference loader does; a path below ``out_dir`` (a folder
    still being written) is read from the same place below ``write_dir``."""
    def local(path: str) -> str:
        if out_dir is None or not Path(path).is_relative_to(out_dir):
            return path
        return str(write_dir / Path(path).relative_to(out_dir))

    arrays = [read_rgb(local(p)).permute(1, 2, 0).contiguous().numpy()
              for p in tqdm(paths, desc="decode once", unit="img", mininterval=5)]
    sizes = np.array([a.size for a in arrays], dtype=np.int64)
    return DecodedImages(paths=np.array(paths, dtype=str),
                         shapes=np.array([a.shape[:2] for a in arrays], dtype=np.int32),
                         offsets=np.concatenate([[0], np.cumsum(sizes)]),
                         pixels=np.concatenate([a.ravel() for a in arrays]) if arrays
                         else np.zeros(0, np.uint8))


def write_decoded(write_dir: Path, out_dir: Path, splits: dict[str, pd.DataFrame],
                  max_mb: float) -> list[str]:
    """Write ``<split>.decoded.npz`` into ``write_dir`` (the manifest folder ``out_dir`` while
    it is written) for every image manifest whose decoded images fit in ``max_mb`` MB (0:
    none); returns the splits written."""
    written = []
    for split, frame in splits.items():
        if not {"path", "width", "height"} <= set(frame.columns) or frame.empty:
            continue  # not an image manifest (classes.csv, split.csv), or nothing to decode
        nbytes = decoded_nbytes(frame)
        if nbytes > max_mb * 1e6:
            log.info("%s: %.0f MB decoded, over loader.decoded_max_mb (%g): its loaders decode "
                     "from disk every epoch", split, nbytes / 1e6, max_mb)
            continue
        images = decode_all(frame["path"].tolist(), write_dir, out_dir)
        with open(decoded_path(write_dir, split), "wb") as fh:
            np.savez(fh, paths=images.paths, shapes=images.shapes, offsets=images.offsets,
                     pixels=images.pixels)
        log.info("%s: %d images decoded once (%.1f MB)", split, len(images), nbytes / 1e6)
        written.append(split)
    return written


def read_decoded(folder: Path, split: str, frame: pd.DataFrame) -> DecodedImages | None:
    """The decoded images of split ``split`` (``None`` when its folder has none), checked to
    list exactly the manifest's paths in its order."""
    path = decoded_path(folder, split)
    if not path.is_file():
        return None
    with np.load(path) as data:
        images = DecodedImages(data["paths"], data["shapes"], data["offsets"], data["pixels"])
    if images.paths.tolist() != frame["path"].tolist():
        raise DatasetError(f"{path} does not list the images of {folder / split}.csv in its "
                           f"order: rerun the stage that writes {folder}")
    return images


#: The reference crop's aspect-ratio range (torchvision's default), and its logarithm as the
#: reference computes it (float32).
RATIO = (3 / 4, 4 / 3)
LOG_RATIO = torch.log(torch.tensor(RATIO)).tolist()


class CropDraws:
    """Crop boxes (top, left, height, width) and flips: the draws of torchvision's
    ``RandomResizedCrop.make_params`` and ``RandomHorizontalFlip`` from torch's generator
    seeded for the sample (:func:`~pipeline.loaders.common.seeded_sample`), made from a
    generator of its own, reseeded per sample, so that any thread can draw any sample's
    (tests/test_decoded.py checks them against the reference's for every fallback). The
    draws are the reference's ops (``uniform_``, ``random_``: what ``torch.empty(1).uniform_``,
    ``torch.randint`` and ``torch.rand`` run) on scratch tensors kept between samples.
    """

    def __init__(self, spec: LoaderSpec):
        self.spec, self.generator = spec, torch.Generator()
        self.real, self.integer = torch.empty(1), torch.empty(1, dtype=torch.int64)

    def uniform(self, low: float, high: float) -> torch.Tensor:
        """One float32 draw from [low, high) (a tensor)."""
        return self.real.uniform_(low, high, generator=self.generator)

    def below(self, high: int) -> int:
        """One integer draw from [0, high)."""
        return int(self.integer.random_(0, high, generator=self.generator).item())

    def __call__(self, seed: int, height: int,
                 width: int) -> tuple[tuple[int, int, int, int], bool]:
        """The crop box and flip of the sample seeded ``seed``
        (:func:`~pipeline.loaders.seeds.sample_seeds`) in an image of this size."""
        self.generator.manual_seed(seed)
        area, low, high = height * width, *self.spec.scale
        for _ in range(10):
            target_area = area * self.uniform(low, high).item()
            aspect = torch.exp(self.uniform(*LOG_RATIO)).item()
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top, left = self.below(height - h + 1), self.below(width - w + 1)
                break
        else:  # the reference's fallback: a central crop within the ratio range
            in_ratio = float(width) / float(height)
            if in_ratio < min(RATIO):
                w, h = width, int(round(width / min(RATIO)))
            elif in_ratio > max(RATIO):
                h, w = height, int(round(height * max(RATIO)))
            else:
                w, h = width, height
            top, left = (height - h) // 2, (width - w) // 2
        flip = self.spec.flip and self.uniform(0, 1).item() < 0.5
        return (top, left, h, w), flip


class DecodedLoader:
    """Iterable of uint8 ``(images, targets)`` batches cropped and resized from decoded images
    on the CPU (:meth:`fresh_batches`). Evaluation batches are made once and kept: they are
    the same every pass."""

    def __init__(self, manifest: pd.DataFrame, spec: LoaderSpec, images: DecodedImages):
        if len(images) != len(manifest):
            raise ValueError(f"{len(images)} decoded images for a manifest of {len(manifest)}")
        self.spec, self.images = spec, images
        self.targets = manifest_targets(manifest)
        self.sampler = ShardBatchSampler(len(manifest), spec)
        _, world = resolve_shard(spec)
        self.batches = batches_per_rank(len(manifest), world, spec.batch_size, spec.train)
        self.interpolation = INTERPOLATIONS[spec.interpolation]
        self.eval = eval_transform(spec.size, crop=spec.crop, interpolation=spec.interpolation)
        self.kept: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.spec.train:
            yield from self.fresh_batches()
            return
        # evaluation draws nothing: every pass gives the same batches, made once and kept
        # (a run evaluates every epoch; at 32 px its 600 images take 1.8 MB)
        if self.kept is None:
            self.kept = list(self.fresh_batches())
        for images, targets in self.kept:
            yield images.clone(), targets.clone()

    def make_batch(self, rows: list[int]) -> torch.Tensor:
        """The uint8 batch of ``rows``, cropped and resized (and flipped) one image after
        another; evaluation's resize and centre crop."""
        size, images = self.spec.size, self.images.tensors
        batch = torch.empty(len(rows), 3, size, size, dtype=torch.uint8,
                            memory_format=torch.channels_last)
        if not self.spec.train:
            for row, slot in zip(rows, batch):
                slot.copy_(self.eval(images[row]))
            return batch
        draws = CropDraws(self.spec)
        for row, seed, slot in zip(rows, sample_seeds(self.spec.seed, rows).tolist(), batch):
            image = images[row]
            (top, left, height, width), flip = draws(seed, image.shape[1], image.shape[2])
            out = resize_image(image[:, top:top + height, left:left + width], [size, size],
                               interpolation=self.interpolation, antialias=True)
            slot.copy_(out.flip(-1) if flip else out)
        return batch

    def fresh_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This shard's batches: made in the caller's thread when torch computes on one
        thread (the run has one core, and a helper would only compete for it), else each made
        by one helper thread while the caller works on the batch before it.

        Measured on 2 cores, resnet_tiny at 32 px, one training thread: an image per pool task
        (two helpers) cost 0.51 ms of CPU per image for 0.15 ms of cropping and resizing (the
        hand-offs, and the threads' contention for the GIL, which cropping's small tensor
        calls hold most of the time); a batch per task 0.16. A training epoch then took 0.78
        ms of CPU per image with the helper and 0.69 without it (1,650 and 1,480 images/s
        alone): side by side with another run, the CPU is what counts. Cropping and
        resizing a 32 px training image then cost 0.19 ms of CPU in the training thread, most
        of it Python and small tensor calls per image; with the seeds of a batch computed at
        once, one generator reseeded per sample and each image's view made once, 0.077 ms.
        """
        batches = list(self.sampler)
        if torch.get_num_threads() == 1:
            for rows in batches:
                yield self.make_batch(rows), self.targets[rows]
        else:
            with ThreadPoolExecutor(1, initializer=torch.set_num_threads,
                                    initargs=(1,)) as pool:
                pending = pool.submit(self.make_batch, batches[0]) if batches else None
                for k, rows in enumerate(batches):
                    batch = pending.result()
                    if k + 1 < len(batches):
                        pending = pool.submit(self.make_batch, batches[k + 1])
                    yield batch, self.targets[rows]
        for _ in range(self.batches - len(batches)):  # eval: this rank's shard ended early
            yield empty_batch(self.spec.size, self.targets)
