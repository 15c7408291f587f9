"""BN-Inception (Inception-v2) of Ioffe & Szegedy, "Batch Normalization" (ICML 2015), registered into timm.

The layout is the widely used Caffe one (as in ``pretrainedmodels.bninception``): a 7x7/2 and a 1x1 + 3x3
stem with two max pools, ten Inception modules (3a, 3b, 3c/2, 4a-4d, 4e/2, 5a, 5b) whose branches are
conv -> BN -> ReLU, 5a with an average-pool branch and 5b with a max-pool branch, then global average
pooling, dropout and a linear classifier. After ``import pipeline.models.bninception``,
``timm.create_model("bninception", num_classes=10)`` builds it like any timm model (``pretrained=False``
only: no weights are published for it here and none are ever downloaded).

Cost with 1000 classes (measured by ``pipeline.models.cost``, checked in ``tests/test_bninception.py``):
11,295,240 trainable parameters and 2.03 GMACs at 224x224 (2,032,600,064 MACs: 2,031,576,064 in the
convolutions, 1,024,000 in the classifier). The commonly quoted figures are about 11.3 M parameters and
about 2.0 G MACs, so this layout matches them. The parameter count includes the Caffe layout's
convolution biases (10,016 of them, redundant in front of BN but part of the published layout).

Deviation from Caffe (pool window placement, no effect on parameters or MACs): the pass-through max
pool of the two reduction modules (3c, 4e) is a 3x3/2 pool with padding 1, centred on the same pixels as
the stride-2 convolution branches, instead of Caffe's unpadded ceil-mode pool. Both give the same output
size for even inputs (hence identical shapes at 224), but Caffe's pool is one pixel short of the
convolution branches for odd sizes (e.g. 299 or 72 inputs), which breaks the concatenation. The stem
pools keep Caffe's ceil mode; a 32x32 input goes 16 -> 8 -> 4 -> 2 -> 1 through the five strides, never 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import create_classifier
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

__all__ = ["BNInception", "InceptionBlock", "InceptionSpec", "bninception", "register_bninception"]

logger = logging.getLogger(__name__)

MODEL_NAME = "bninception"


class ConvBnAct(nn.Module):
    """Conv (with bias, as in the Caffe layout) -> BatchNorm -> ReLU."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=kernel_size // 2)
        self.bn = nn.BatchNorm2d(out_chs)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chs, H, W) -> (B, out_chs, H / stride, W / stride)."""
        return self.act(self.bn(self.conv(x)))


@dataclass(frozen=True)
class InceptionSpec:
    """Widths of one Inception module; ``c1x1 == 0`` and ``pool_proj == 0`` mark a stride-2 reduction
    module (no 1x1 branch, pooled input passed through)."""

    c1x1: int
    c3x3_reduce: int
    c3x3: int
    cdbl_reduce: int
    cdbl: int
    pool: str  # "avg" or "max"
    pool_proj: int
    stride: int = 1

    def out_chs(self, in_chs: int) -> int:
        """Channels of the concatenated output given ``in_chs`` input channels."""
        return self.c1x1 + self.c3x3 + self.cdbl + (self.pool_proj or in_chs)


# Ioffe & Szegedy (2015) Fig. 5 / the Caffe prototxt. Input widths follow from the previous module.
SPECS: dict[str, InceptionSpec] = {
    "3a": InceptionSpec(64, 64, 64, 64, 96, "avg", 32),  # 192 -> 256
    "3b": InceptionSpec(64, 64, 96, 64, 96, "avg", 64),  # 256 -> 320
    "3c": InceptionSpec(0, 128, 160, 64, 96, "max", 0, stride=2),  # 320 -> 576
    "4a": InceptionSpec(224, 64, 96, 96, 128, "avg", 128),  # 576 -> 576
    "4b": InceptionSpec(192, 96, 128, 96, 128, "avg", 128),  # 576 -> 576
    "4c": InceptionSpec(160, 128, 160, 128, 160, "avg", 128),  # 576 -> 608
    "4d": InceptionSpec(96, 128, 192, 160, 192, "avg", 128),  # 608 -> 608
    "4e": InceptionSpec(0, 128, 192, 192, 256, "max", 0, stride=2),  # 608 -> 1056
    "5a": InceptionSpec(352, 192, 320, 160, 224, "avg", 128),  # 1056 -> 1024
    "5b": InceptionSpec(352, 192, 320, 192, 224, "max", 128),  # 1024 -> 1024
}


def _pool(spec: InceptionSpec) -> nn.Module:
    """The pooling branch's pool: 3x3/1 'same' avg or max, or 3x3/2 padded max for reductions."""
    if spec.stride == 2:
        # padding 1 keeps the size equal to the stride-2 conv branches' ceil(H / 2) for every H
        return nn.MaxPool2d(3, stride=2, padding=1)
    if spec.pool == "max":
        return nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True)
    return nn.AvgPool2d(3, stride=1, padding=1, ceil_mode=True, count_include_pad=True)


class InceptionBlock(nn.Module):
    """One BN-Inception module: 1x1 | 1x1->3x3 | 1x1->3x3->3x3 | pool(->1x1) branches, concatenated."""

    def __init__(self, in_chs: int, spec: InceptionSpec) -> None:
        super().__init__()
        s = spec.stride
        self.branch1x1 = ConvBnAct(in_chs, spec.c1x1, 1) if spec.c1x1 else None
        self.branch3x3 = nn.Sequential(
            ConvBnAct(in_chs, spec.c3x3_reduce, 1), ConvBnAct(spec.c3x3_reduce, spec.c3x3, 3, stride=s)
        )
        self.branch_dbl = nn.Sequential(
            ConvBnAct(in_chs, spec.cdbl_reduce, 1),
            ConvBnAct(spec.cdbl_reduce, spec.cdbl, 3),
            ConvBnAct(spec.cdbl, spec.cdbl, 3, stride=s),
        )
        self.pool = _pool(spec)
        self.pool_proj = ConvBnAct(in_chs, spec.pool_proj, 1) if spec.pool_proj else None
        self.out_chs = spec.out_chs(in_chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chs, H, W) -> (B, out_chs, H / stride, W / stride)."""
        pooled = self.pool(x)
        branches = [
            self.branch3x3(x),
            self.branch_dbl(x),
            self.pool_proj(pooled) if self.pool_proj is not None else pooled,
        ]
        if self.branch1x1 is not None:
            branches.insert(0, self.branch1x1(x))
        return torch.cat(branches, dim=1)


class BNInception(nn.Module):
    """BN-Inception / Inception-v2 with timm's model interface.

    With 1000 classes: 11,295,240 trainable parameters, 2.03 GMACs at 224x224 (``pipeline.models.cost``;
    the module docstring compares them with the published ~11.3 M / ~2.0 G).

    Args:
        num_classes: classifier outputs; 0 gives a model without classifier (``fc`` is Identity).
        in_chans: input image channels.
        drop_rate: dropout before the classifier.
        global_pool: timm pool type ("avg", "max", "avgmax", "catavgmax", "" for none).
    """

    def __init__(
        self, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0, global_pool: str = "avg"
    ) -> None:
        super().__init__()
        self.num_classes, self.in_chans, self.drop_rate = num_classes, in_chans, drop_rate
        # stem; comments give shapes for a 224x224 input
        self.conv1 = ConvBnAct(in_chans, 64, 7, stride=2)  # 64 x 112 x 112
        self.pool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 64 x 56 x 56
        self.conv2_reduce = ConvBnAct(64, 64, 1)
        self.conv2 = ConvBnAct(64, 192, 3)  # 192 x 56 x 56
        self.pool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 192 x 28 x 28
        chs = 192
        for name, spec in SPECS.items():  # 3x: 28 -> 14, 4x: 14 -> 7, 5x: 7
            block = InceptionBlock(chs, spec)
            self.add_module(f"inception_{name}", block)
            chs = block.out_chs
        self.num_features = self.head_hidden_size = chs  # 1024
        self.feature_info = [
            dict(num_chs=64, reduction=2, module="conv1"),
            dict(num_chs=192, reduction=4, module="conv2"),
            dict(num_chs=320, reduction=8, module="inception_3b"),
            dict(num_chs=608, reduction=16, module="inception_4d"),
            dict(num_chs=1024, reduction=32, module="inception_5b"),
        ]
        self.global_pool, self.head_drop, self.fc = create_classifier(
            self.num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate
        )
        self._init_weights()

    def _init_weights(self) -> None:
        """He init for convs (ReLU network trained from scratch), unit BN, zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        """The final linear layer (timm interface)."""
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier (and optionally the pooling) for a new number of classes."""
        self.num_classes = num_classes
        if global_pool is None:
            global_pool = self.global_pool.pool_type
        self.global_pool, self.fc = create_classifier(self.num_features, num_classes, pool_type=global_pool)
        device = next(self.parameters()).device
        self.global_pool.to(device).train(self.training)
        self.fc.to(device).train(self.training)
        self.head_hidden_size = self.num_features * self.global_pool.feat_mult()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) -> (B, 1024, H / 32, W / 32) (ceil-rounded at each stride)."""
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(self.conv2_reduce(x)))
        for name in SPECS:
            x = getattr(self, f"inception_{name}")(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """(B, 1024, h, w) -> pooled (B, 1024) features if ``pre_logits`` else (B, num_classes) logits."""
        x = self.head_drop(self.global_pool(x))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) images -> (B, num_classes) logits."""
        return self.forward_head(self.forward_features(x))


def _cfg(**kwargs: Any) -> dict[str, Any]:
    """timm pretrained cfg: preprocessing and layer names; no URL, there are no weights to fetch."""
    return {
        "url": "",
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": (7, 7),
        "crop_pct": 0.875,
        "interpolation": "bilinear",
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "conv1.conv",
        "classifier": "fc",
        "paper_ids": "arXiv:1502.03167",
        **kwargs,
    }


# read by timm's register_model through this module's globals
default_cfgs = generate_default_cfgs({MODEL_NAME: _cfg()})


def bninception(pretrained: bool = False, **kwargs: Any) -> BNInception:
    """timm entrypoint for BN-Inception; ``kwargs`` go to ``BNInception`` (and timm's builder)."""
    if pretrained:
        raise ValueError("bninception has no pretrained weights in this project; use pretrained=False")
    return build_model_with_cfg(BNInception, MODEL_NAME, pretrained=False, **kwargs)


def register_bninception() -> bool:
    """Register ``bninception`` into timm unless the name is already taken; return whether it registered.

    Registering twice (e.g. a module reload) makes timm warn and overwrite, so this checks first; if a
    different ``bninception`` is already registered (e.g. a future timm), that one is kept and a warning
    is logged so the mismatch is visible.
    """
    if timm.is_model(MODEL_NAME):
        existing = timm.models.model_entrypoint(MODEL_NAME)
        if existing.__module__ != __name__:
            logger.warning(
                "timm already has %r from %s; not registering ours", MODEL_NAME, existing.__module__
            )
        return False
    register_model(bninception)
    return True


register_bninception()
