"""``resnet_tiny``: the embedded default's backbone, registered into timm.

A ResNet-10 shape (one BasicBlock per stage, total stride 32) with widths 16-32-64-128, so the
whole default DAG trains on two CPU cores in minutes. It is an ordinary timm ResNet: everything
that works for ``resnet50`` (``reset_classifier``, ``forward_features``...) works for it.
"""

from __future__ import annotations

import timm
from timm.models import register_model
from timm.models.resnet import BasicBlock, ResNet

NAME = "resnet_tiny"


def _resnet_tiny(pretrained: bool = False, **kwargs) -> ResNet:
    """ResNet-10 layout with widths 16..128 (no pretrained weights exist)."""
    if pretrained:
        raise ValueError(f"{NAME} has no pretrained weights; train it with the pipeline")
    for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(key, None)  # passed by timm.create_model; there are no weights to locate
    args = dict(block=BasicBlock, layers=(1, 1, 1, 1), channels=(16, 32, 64, 128),
                stem_width=16)
    model = ResNet(**dict(args, **kwargs))
    model.pretrained_cfg = model.default_cfg = {
        "architecture": NAME, "num_classes": model.num_classes, "input_size": (3, 32, 32),
        "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
        "first_conv": "conv1", "classifier": "fc"}
    return model


_resnet_tiny.__name__ = NAME
if not timm.is_model(NAME):
    register_model(_resnet_tiny)
