"""Train and eval preprocessing (torchvision reference implementation).

Train: random-resized crop to the resizer-input resolution, horizontal flip. Eval: resize the
shorter side to ``size / eval_crop``, then centre crop ``size``. Both end with ImageNet
normalisation. Resizing is antialiased, as DALI's resize and PIL's are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import v2

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


def eval_transform(size: int, *, crop: float, interpolation: str = "bilinear") -> v2.Compose:
    """Resize the shorter side, centre crop ``size``, normalise."""
    return v2.Compose([v2.Resize(eval_resize_size(size, crop),
                                 interpolation=INTERPOLATIONS[interpolation], antialias=True),
                       v2.CenterCrop(size), *_finish()])
