"""Train and eval preprocessing (torchvision reference implementation), and normalisation.

Train: random-resized crop to the resizer-input resolution, horizontal flip. Eval: resize the
shorter side to ``size / eval_crop``, then centre crop ``size``. Resizing is antialiased, as
DALI's resize and PIL's are. Both give uint8 images: loaders hand over uint8 batches (a
quarter of float32's bytes through worker processes and pinned memory), and whoever consumes
them normalises (:func:`normalize`: per image on the CPU, where a 224-px image stays in
cache, batch-wide on a GPU after the copy).

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


def normalize(images: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """A uint8 ``(B, 3, H, W)`` batch as float32 with ImageNet normalisation, bit for bit
    torchvision's ``ToDtype(float32, scale=True)`` + ``Normalize``; float batches pass.

    On the CPU each image is converted into its slot of one preallocated batch (it stays in
    cache; converting the whole batch at once streams it through memory three times).
    ``out``: a float32 batch of the same shape to write into (a caller that reuses one saves
    the page faults of a fresh 154 MB batch at 448 px, as much again as the conversion).
    """
    if images.dtype != torch.uint8:
        return images
    if out is None:
        out = torch.empty(images.shape, dtype=torch.float32, device=images.device)
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(-1, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(-1, 1, 1)
    slots = [(images, out)] if images.is_cuda else zip(images, out)
    for image, slot in slots:
        slot.copy_(image).mul_(1.0 / 255).sub_(mean).div_(std)
    return out


def random_resized_crop(size: int, scale: Sequence[float],
                        interpolation: str = "bilinear") -> v2.RandomResizedCrop:
    """The train crop (torchvision's aspect-ratio range 3/4..4/3); its ``make_params`` draws
    the crop box from torch's global generator."""
    return v2.RandomResizedCrop(size, scale=tuple(scale),
                                interpolation=INTERPOLATIONS[interpolation], antialias=True)


def train_transform(size: int, *, scale: Sequence[float], interpolation: str = "bilinear",
                    flip: bool = True) -> v2.Compose:
    """Random-resized crop + flip, for a uint8 CHW image tensor."""
    steps: list[Callable] = [random_resized_crop(size, scale, interpolation)]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)


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
    """Resize the shorter side, centre crop ``size``, for a uint8 CHW image tensor."""
    return v2.Compose([v2.Resize(eval_resize_size(size, crop),
                                 interpolation=INTERPOLATIONS[interpolation], antialias=True),
                       CentreCrop(size)])
