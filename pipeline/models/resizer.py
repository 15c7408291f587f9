"""The learned image resizer of Talebi & Milanfar, "Learning to Resize Images for Computer Vision Tasks"
(ICCV 2021, Fig. 3).

The resizer is a small CNN placed in front of a recognition model and trained jointly with it on the task
loss only. Its output is a plain (bilinear by default) resize of the input plus a learned residual, so at
initialisation it already behaves like the default resizer, and it can map any input size to any output
size (up or down, any aspect ratio) because the change of resolution happens in a fixed interpolation of
features, not in strided convolutions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["INTERPOLATION_MODES", "LearnedResizer", "ResidualBlock", "output_size_of"]

#: Interpolation modes accepted for both the image skip path and the feature resizer.
INTERPOLATION_MODES: tuple[str, ...] = ("bilinear", "bicubic", "nearest", "area")
#: Modes for which ``F.interpolate`` accepts ``align_corners`` and ``antialias``.
_SMOOTH_MODES: tuple[str, ...] = ("bilinear", "bicubic")


def output_size_of(size: int | tuple[int, int]) -> tuple[int, int]:
    """Normalise an output size given as ``s`` (square) or ``(h, w)`` to ``(h, w)``.

    Raises:
        ValueError: if the size is not one or two positive integers, so that a bad configuration fails at
            construction time instead of inside ``F.interpolate`` mid-training.
    """
    message = f"output_size must be an int or (h, w) pair of ints >= 1, got {size!r}"
    if isinstance(size, int):
        pair: tuple = (size, size)
    elif isinstance(size, (tuple, list)):
        pair = tuple(size)
    else:
        raise ValueError(message)
    # bool is an int subclass: True would silently mean 1x1
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise ValueError(message)
    return int(pair[0]), int(pair[1])


def _check_positive(name: str, value: int) -> None:
    """Raise a ValueError naming ``name`` unless ``value`` is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1 (allowed range: 1, 2, 3, ...), got {value!r}")


def _check_interpolation(interpolation: str, antialias: bool) -> None:
    """Validate the interpolation mode and its combination with ``antialias``."""
    if interpolation not in INTERPOLATION_MODES:
        raise ValueError(
            f"interpolation must be one of {', '.join(INTERPOLATION_MODES)}, got {interpolation!r}"
        )
    if antialias and interpolation not in _SMOOTH_MODES:
        raise ValueError(
            f"antialias=True is only valid with interpolation in {_SMOOTH_MODES}, got {interpolation!r}"
        )


class ResidualBlock(nn.Module):
    """Conv3x3 -> BN -> LeakyReLU -> Conv3x3 -> BN, plus the block input (paper Fig. 3, step 4).

    Convolutions carry no bias because the BatchNorm that follows each one makes a bias redundant.
    """

    def __init__(self, n: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(n, n, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(n)
        self.act = nn.LeakyReLU(negative_slope)
        self.conv2 = nn.Conv2d(n, n, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, n, h, w) features to (B, n, h, w) features."""
        y = self.act(self.bn1(self.conv1(x)))
        return x + self.bn2(self.conv2(y))


class LearnedResizer(nn.Module):
    """Learned resizer, paper Fig. 3: a bilinear resize of the image plus a learned residual.

    Forward maps a (B, 3, H, W) image of any size to (B, 3, h, w) with ``(h, w) = output_size``:

    1. ``skip = resize(x, (h, w))``                                   image-level skip
    2. conv7x7 3->n (bias) -> LeakyReLU -> conv1x1 n->n (bias) -> LeakyReLU -> BN   at (H, W)
    3. ``f = resize(features, (h, w))``                               feature resizer
    4. ``r`` residual blocks, each fed the previous block's output
    5. conv3x3 (no bias) -> BN, plus ``f``
    6. conv7x7 n->3 (bias), plus ``skip``

    With r=1, n=16 it has 12,035 trainable parameters (11,872 of them convolution kernel weights).

    Args:
        output_size: target size ``s`` (square) or ``(h, w)``.
        n: number of filters of every inner convolution.
        r: number of residual blocks (>= 1, as in the paper's ablation 1..4).
        interpolation: mode of both the image skip resize and the feature resize; the paper uses bilinear.
        antialias: low-pass filter when down-scaling (bilinear/bicubic only). Off by default to match the
            paper, whose bilinear resize is TensorFlow's non-antialiased one.
        negative_slope: LeakyReLU slope (paper: 0.2).
        zero_init: zero the last convolution (weights and bias), so that a fresh resizer equals its skip
            exactly; the paper does not say how it initialises, and a random last layer adds a random
            residual to every image from the first step.
        bound: ``None`` for the paper's unbounded residual, or ``B > 0`` for ``B * tanh(residual / B)``:
            the backbone's first convolution feeds a BatchNorm, so the loss does not see the residual's scale
            and nothing else keeps it in check.
    """

    def __init__(
        self,
        output_size: int | tuple[int, int],
        n: int,
        r: int,
        interpolation: str = "bilinear",
        antialias: bool = False,
        negative_slope: float = 0.2,
        zero_init: bool = False,
        bound: float | None = None,
    ) -> None:
        super().__init__()
        if bound is not None and not bound > 0:
            raise ValueError(f"bound must be None or a number > 0, got {bound!r}")
        _check_positive("n", n)
        _check_positive("r", r)
        _check_interpolation(interpolation, antialias)
        self.output_size = output_size_of(output_size)
        self.n, self.r = n, r
        self.interpolation, self.antialias = interpolation, antialias
        self.negative_slope = negative_slope
        self.bound = bound

        # step 2: features at the input resolution; the 7x7 kernel sees a 7x7 window of the original image
        self.stem = nn.Sequential(
            nn.Conv2d(3, n, kernel_size=7, padding=3),
            nn.LeakyReLU(negative_slope),
            nn.Conv2d(n, n, kernel_size=1),
            nn.LeakyReLU(negative_slope),
            nn.BatchNorm2d(n),
        )
        # step 4: residual blocks at the output resolution
        self.blocks = nn.ModuleList(ResidualBlock(n, negative_slope) for _ in range(r))
        # step 5: merge before the feature skip
        self.fuse = nn.Sequential(nn.Conv2d(n, n, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(n))
        # step 6: back to an RGB residual
        self.final = nn.Conv2d(n, 3, kernel_size=7, padding=3)
        if zero_init:
            nn.init.zeros_(self.final.weight)
            nn.init.zeros_(self.final.bias)

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        """Resize (B, C, H, W) to (B, C, h, w) with the configured interpolation (used by both skips)."""
        if self.interpolation in _SMOOTH_MODES:
            return F.interpolate(
                x,
                size=self.output_size,
                mode=self.interpolation,
                align_corners=False,
                antialias=self.antialias,
            )
        # nearest/area reject align_corners and antialias
        return F.interpolate(x, size=self.output_size, mode=self.interpolation)

    def skip_and_residual(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two terms of the output for a (B, 3, H, W) batch: the bilinear skip and the learned
        residual (bounded when ``bound`` is set), each (B, 3, h, w)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"LearnedResizer expects a (B, 3, H, W) tensor, got shape {tuple(x.shape)}")
        skip = self.resize(x)  # (B, 3, h, w)
        f = self.resize(self.stem(x))  # (B, 3, H, W) -> (B, n, H, W) -> (B, n, h, w)
        y = f
        for block in self.blocks:  # each block takes the previous block's output
            y = block(y)  # (B, n, h, w)
        y = self.fuse(y) + f  # (B, n, h, w)
        residual = self.final(y)  # (B, 3, h, w)
        if self.bound is not None:
            residual = self.bound * torch.tanh(residual / self.bound)
        return skip, residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Resize a (B, 3, H, W) image batch to (B, 3, h, w)."""
        skip, residual = self.skip_and_residual(x)
        return skip + residual

    def extra_repr(self) -> str:
        """Summarise the constructor arguments in ``repr(model)``."""
        h, w = self.output_size
        return (
            f"output_size=({h}, {w}), n={self.n}, r={self.r}, interpolation={self.interpolation!r}, "
            f"antialias={self.antialias}, negative_slope={self.negative_slope}, bound={self.bound}"
        )
