"""Train and eval preprocessing (torchvision reference implementation).

Train: random-resized crop to the resizer-input resolution, horizontal flip. Eval: resize the
shorter side to ``size / eval_crop``, then centre crop ``size``. Both end with ImageNet
normalisation. Resizing is antialiased, as DALI's resize and PIL's are.

The eval geometry is written out here (:func:`eval_resized_hw`, :func:`centre_crop_anchor`)
because the DALI pipeline reproduces it exactly: the same resized size (longer side
truncated, as torchvision does) and the same crop placement (half-way, rounded half up, as
DALI's ``crop_pos=0.5`` does; torchvision's own CenterCrop rounds half to even).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = {"bilinear": v2.InterpolationMode.BILINEAR,
                  "bicubic": v2.InterpolationMode.BICUBIC}


def _finish() -> list[Callable]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]


def train_transform(size: int, *, scale: Sequence[float], interpolation: str = "bilinear",
                    flip: bool = True) -> v2.Compose:
    """Random-resized crop + flip + normalise, for a uint8 CHW image tensor."""
    steps: list[Callable] = [v2.RandomResizedCrop(size, scale=tuple(scale),
                                                  interpolation=INTERPOLATIONS[interpolation],
                                                  antialias=True)]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps + _finish())


def eval_resize_size(size: int, crop: float) -> int:
    """Shorter side before the centre crop (224 / 0.875 = 256)."""
    return int(round(size / crop))


def eval_resized_hw(height: int, width: int, shorter: int) -> tuple[int, int]:
    """(height, width) after resizing the shorter side to ``shorter``: the longer side is
    ``floor(shorter * long / short)``, torchvision's rule (DALI's loader computes the same)."""
    short, long = min(height, width), max(height, width)
    new_long = math.floor(shorter * long / short)
    return (new_long, shorter) if width <= height else (shorter, new_long)


def centre_crop_anchor(length: int, crop: int) -> int:
    """First kept row/column of a centred crop: ``round(0.5 * (length - crop))`` with halves
    rounded up, as DALI's ``crop_pos_x/y = 0.5`` places it."""
    return (length - crop + 1) // 2


class CentreCrop(torch.nn.Module):
    """Square centre crop of a (..., H, W) tensor, placed by :func:`centre_crop_anchor`."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        height, width = img.shape[-2:]
        if height < self.size or width < self.size:
            raise ValueError(f"cannot centre-crop {self.size} px from a {height}x{width} image")
        return TF.crop(img, centre_crop_anchor(height, self.size),
                       centre_crop_anchor(width, self.size), self.size, self.size)


def eval_transform(size: int, *, crop: float, interpolation: str = "bilinear") -> v2.Compose:
    """Resize the shorter side, centre crop ``size``, normalise."""
    return v2.Compose([v2.Resize(eval_resize_size(size, crop),
                                 interpolation=INTERPOLATIONS[interpolation], antialias=True),
                       CentreCrop(size), *_finish()])
