"""The torchvision DataLoader over a manifest: the reference loader."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF

from pipeline.loaders.transforms import eval_transform, train_transform


def read_rgb(path: str) -> torch.Tensor:
    """Decode an image file to a uint8 (3, H, W) RGB tensor (EXIF orientation applied;
    grayscale, CMYK and palette images converted)."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        return TF.pil_to_tensor(img.convert("RGB"))


class ManifestDataset(Dataset):
    """(image, target) pairs from a manifest's ``path`` and ``label`` columns."""

    def __init__(self, manifest: pd.DataFrame, transform: Callable[[torch.Tensor], torch.Tensor]):
        self.paths = manifest["path"].tolist()
        self.labels = torch.tensor(manifest["label"].tolist(), dtype=torch.long)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(read_rgb(self.paths[index])), self.labels[index]


@dataclass(frozen=True)
class LoaderSpec:
    """How to load one split; mirrors ``loader`` in params.yaml plus the run's resolution."""

    size: int
    batch_size: int
    workers: int
    train: bool
    scale: tuple[float, float] = (0.08, 1.0)
    crop: float = 0.875
    interpolation: str = "bilinear"
    flip: bool = True
    seed: int = 0


def build_torch_loader(manifest: pd.DataFrame, spec: LoaderSpec) -> DataLoader:
    """A DataLoader whose shuffling and augmentation are fixed by ``spec.seed``.

    Train loaders shuffle and drop the last partial batch; eval loaders keep every image in
    manifest order, so metrics cover the whole split.
    """
    if spec.train:
        transform = train_transform(spec.size, scale=spec.scale,
                                    interpolation=spec.interpolation, flip=spec.flip)
    else:
        transform = eval_transform(spec.size, crop=spec.crop, interpolation=spec.interpolation)
    generator = torch.Generator().manual_seed(spec.seed)
    return DataLoader(ManifestDataset(manifest, transform), batch_size=spec.batch_size,
                      shuffle=spec.train, drop_last=spec.train, num_workers=spec.workers,
                      generator=generator, persistent_workers=False,
                      pin_memory=torch.cuda.is_available())
