"""The torchvision DataLoader over a manifest: the reference loader.

Same order and sharding as the DALI loader (see :mod:`pipeline.loaders.common`): a seeded
permutation per epoch when training, manifest order when evaluating; rank ``r`` reads its
contiguous slice, and every rank yields the same number of batches. Augmentation is
seeded per sample from ``(spec.seed, row)``, so the same spec gives the same batches whatever
the number of workers. Batches are uint8 ``(B, 3, S, S)``; see
:func:`pipeline.loaders.transforms.normalize`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate
from torchvision.transforms.v2 import functional as TF

from pipeline.loaders.common import (LoaderSpec, batches_per_rank, empty_batch, epoch_order,
                                     manifest_targets, resolve_shard, seeded_sample,
                                     shard_range)
from pipeline.loaders.transforms import eval_transform, train_transform

__all__ = ["LoaderSpec", "ManifestDataset", "TorchLoader", "build_torch_loader", "read_rgb"]


def read_rgb(path: str) -> torch.Tensor:
    """Decode an image file to a uint8 (3, H, W) RGB tensor (EXIF orientation applied;
    grayscale, CMYK and palette images converted)."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        return TF.pil_to_tensor(img.convert("RGB"))


class ManifestDataset(Dataset):
    """(image, target) pairs from a manifest's ``path`` column and its targets
    (``label``, or the AVA histograms ``p1..p10``)."""

    def __init__(self, manifest: pd.DataFrame, transform: Callable[[torch.Tensor], torch.Tensor],
                 seed: int = 0):
        self.paths = manifest["path"].tolist()
        self.targets = manifest_targets(manifest)
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = read_rgb(self.paths[index])
        with seeded_sample(self.seed, index):
            image = self.transform(image)
        return image, self.targets[index]


def collate(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
    """torch's default collation on one thread, as in a worker process (in the main process,
    with workers=0, the trainer's threads made stacking a batch 20x slower on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return default_collate(batch)
    finally:
        torch.set_num_threads(threads)


class ShardBatchSampler(Sampler[list[int]]):
    """This rank's batches of manifest rows (DALI's sharding, see :mod:`common`).

    Training: full batches, as many as every rank has. Evaluation: all of this rank's rows,
    the last batch possibly partial; :class:`TorchLoader` adds the empty batches that equalise
    the batch count across ranks.
    """

    def __init__(self, n: int, spec: LoaderSpec):
        rank, world = resolve_shard(spec)
        start, end = shard_range(n, rank, world)
        rows = epoch_order(n, spec)[start:end]
        if spec.train:  # full batches only, as many as the smallest shard holds
            rows = rows[: batches_per_rank(n, world, spec.batch_size, True) * spec.batch_size]
        self.rows = rows.tolist()
        self.batch_size = spec.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        for i in range(0, len(self.rows), self.batch_size):
            yield self.rows[i:i + self.batch_size]

    def __len__(self) -> int:
        return -(-len(self.rows) // self.batch_size)


class TorchLoader:
    """Iterable of ``(images, targets)`` batches; a fresh DataLoader per pass."""

    def __init__(self, manifest: pd.DataFrame, spec: LoaderSpec):
        if spec.train:
            transform = train_transform(spec.size, scale=spec.scale,
                                        interpolation=spec.interpolation, flip=spec.flip)
        else:
            transform = eval_transform(spec.size, crop=spec.crop,
                                       interpolation=spec.interpolation)
        self.spec = spec
        self.dataset = ManifestDataset(manifest, transform, seed=spec.seed)
        self.sampler = ShardBatchSampler(len(manifest), spec)
        _, world = resolve_shard(spec)
        self.batches = batches_per_rank(len(manifest), world, spec.batch_size, spec.train)

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        workers = self.spec.workers
        # The generator only keeps the DataLoader off the caller's global RNG (it draws its
        # workers' base seed from it); augmentation is seeded per sample.
        loader = DataLoader(self.dataset, batch_sampler=self.sampler, num_workers=workers,
                            collate_fn=collate,
                            generator=torch.Generator().manual_seed(self.spec.seed),
                            prefetch_factor=self.spec.prefetch if workers else None,
                            pin_memory=torch.cuda.is_available(), persistent_workers=False)
        yielded = 0
        for batch in loader:
            yielded += 1
            yield batch
        targets = self.dataset.targets
        for _ in range(self.batches - yielded):  # eval: this rank's shard ended early
            yield empty_batch(self.spec.size, targets)


def build_torch_loader(manifest: pd.DataFrame, spec: LoaderSpec) -> TorchLoader:
    """The reference loader: PIL decode, torchvision v2 transforms, a DataLoader."""
    return TorchLoader(manifest, spec)
