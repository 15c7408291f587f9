"""MULLER (Talebi & Milanfar, ICCV 2023), the successor of the paper's learned resizer: a
multilayer Laplacian resizer with 4 trainable numbers.

    net = resize(x)
    for each of the L = 2 layers:
        g = blur(x)                          # separable 5 x 5 Gaussian, sigma = 1
        net = net + tanh(w * resize(g - x) + b)
        x = g

``resize`` is bilinear without antialiasing; the band-pass residuals ``g - x`` of successive
blurs are resized and added back, each through its own scale ``w`` and offset ``b``. With ``w``
and ``b`` at zero (how it starts) ``tanh`` is zero and the resizer is exactly bilinear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: The paper's configuration: 2 layers, a 5-tap Gaussian with sigma 1.
LAYERS, TAPS, SIGMA = 2, 5, 1.0


def gaussian_taps(taps: int = TAPS, sigma: float = SIGMA) -> torch.Tensor:
    """A normalised 1-D Gaussian of ``taps`` samples."""
    x = torch.arange(taps, dtype=torch.float64) - (taps - 1) / 2
    kernel = torch.exp(-x**2 / (2 * sigma**2))
    return (kernel / kernel.sum()).float()


class MullerResizer(nn.Module):
    """``output_size`` x ``output_size`` from any input size; 2 x ``layers`` parameters."""

    def __init__(self, output_size: int, layers: int = LAYERS, taps: int = TAPS,
                 sigma: float = SIGMA):
        super().__init__()
        self.output_size = (output_size, output_size)
        self.weights = nn.Parameter(torch.zeros(layers))
        self.biases = nn.Parameter(torch.zeros(layers))
        self.register_buffer("taps", gaussian_taps(taps, sigma), persistent=False)
        self.pad = taps // 2

    def blur(self, x: torch.Tensor) -> torch.Tensor:
        """Separable Gaussian blur per channel, edges reflected."""
        channels = x.shape[1]
        rows = self.taps.to(x.dtype).view(1, 1, 1, -1).expand(channels, 1, 1, -1)
        cols = rows.transpose(-1, -2)
        x = F.conv2d(F.pad(x, (self.pad, self.pad, 0, 0), mode="reflect"), rows,
                     groups=channels)
        return F.conv2d(F.pad(x, (0, 0, self.pad, self.pad), mode="reflect"), cols,
                        groups=channels)

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=self.output_size, mode="bilinear", align_corners=False,
                             antialias=False)

    def skip_and_residual(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two terms of the output: the plain bilinear resize and the sum of the layers'
        ``tanh`` terms (what the diagnostics measure, as for the paper's resizer)."""
        skip, residual = self.resize(x), torch.zeros(())
        for w, b in zip(self.weights, self.biases):
            g = self.blur(x)
            residual = residual + torch.tanh(w * self.resize(g - x) + b)
            x = g
        return skip, residual.expand_as(skip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, 3, h, w)
        skip, residual = self.skip_and_residual(x)
        return skip + residual

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, layers={len(self.weights)}, "
                f"taps={self.taps.numel()}")
