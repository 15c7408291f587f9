"""Model cost: parameter counts and multiply-accumulates (MACs), counted one way for the whole project.

Papers and timm quote MACs as "FLOPs"; every MAC figure this project publishes comes from ``count_macs``
so that resizer and backbone costs are comparable and the tool is named (``MACS_TOOL``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["MACS_TOOL", "count_conv_weights", "count_macs", "count_trainable_params", "gmacs"]

#: How ``count_macs`` counts; quote this next to any published MAC figure.
MACS_TOOL = (
    "torch.utils.flop_counter.FlopCounterMode FLOPs / 2, one image, eval mode "
    "(convolution and matmul/linear MACs only; biases, interpolation, BN, pooling, activations and "
    "element-wise additions not counted)"
)


def count_trainable_params(module: nn.Module) -> int:
    """Number of parameters that require grad: conv and linear weights, biases and BN affine terms."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def count_conv_weights(module: nn.Module) -> int:
    """Number of convolution kernel weights only: no biases, no BN, no linear layers.

    This is the convention of the paper's resizer parameter table ("in thousands").
    """
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.modules.conv._ConvNd))


def _as_hw(input_size: tuple[int, int] | int) -> tuple[int, int]:
    """Normalise ``s`` or ``(h, w)`` to ``(h, w)``."""
    if isinstance(input_size, int):
        return input_size, input_size
    h, w = input_size
    return int(h), int(w)


def count_macs(model: nn.Module, input_size: tuple[int, int] | int, in_chans: int = 3) -> int:
    """Multiply-accumulates of one forward pass on ONE image of ``input_size``, counted by ``MACS_TOOL``.

    The model runs in eval mode under ``no_grad`` on a zero batch of 1 (B=1 so the figure is per image,
    eval so BN uses running statistics and dropout is off); every submodule's train/eval flag is restored
    afterwards, so calling this in the middle of training is safe.
    """
    h, w = _as_hw(input_size)
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None else torch.float32
    x = torch.zeros(1, in_chans, h, w, device=device, dtype=dtype)  # (1, C, h, w)

    modes = {m: m.training for m in model.modules()}
    counter = FlopCounterMode(display=False)
    try:
        model.eval()
        with torch.no_grad(), counter:
            model(x)
    finally:
        for m, training in modes.items():
            m.train(training)
    return counter.get_total_flops() // 2  # the tool counts one multiply-add as 2 FLOPs


def gmacs(model: nn.Module, input_size: tuple[int, int] | int, in_chans: int = 3) -> float:
    """``count_macs`` in units of 1e9 (GMACs, the "GFLOPs" of papers and timm)."""
    return count_macs(model, input_size, in_chans) / 1e9
