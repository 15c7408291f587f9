"""Every paper baseline builds through timm, trains (forward + backward) at 32 and 224, and composes with
the learned resizer."""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

import pipeline.models.bninception  # noqa: F401  (registers "bninception" into timm)
from pipeline.models.resizer import LearnedResizer

BASELINES = ["bninception", "densenet121", "resnet50", "mobilenetv2_100", "efficientnet_b0"]
# 32: the embedded default configuration's model resolution; 224: the paper's
RESOLUTIONS = [32, 224]
NUM_CLASSES = 10


def _assert_finite_grads(model: nn.Module) -> None:
    """Every trainable parameter received a finite gradient."""
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing[:5]} ({len(missing)} in all)"
    bad = [
        name
        for name, p in model.named_parameters()
        if p.grad is not None and not torch.isfinite(p.grad).all()
    ]
    assert not bad, f"non-finite gradient for {bad[:5]}"


@pytest.mark.parametrize("size", RESOLUTIONS)
@pytest.mark.parametrize("name", BASELINES)
def test_baseline_forward_backward(name: str, size: int) -> None:
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=NUM_CLASSES, pretrained=False).train()
    logits = model(torch.randn(2, 3, size, size))
    assert logits.shape == (2, NUM_CLASSES)
    F.cross_entropy(logits, torch.tensor([1, 7])).backward()
    _assert_finite_grads(model)


@pytest.mark.parametrize("name", ["bninception", "resnet50"])
def test_learned_resizer_trains_with_backbone(name: str) -> None:
    """64 -> 32 resizer in front of each backbone: gradients reach the resizer and a step changes it."""
    torch.manual_seed(0)
    resizer = LearnedResizer(32)
    model = nn.Sequential(resizer, timm.create_model(name, num_classes=NUM_CLASSES, pretrained=False)).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    before = resizer.stem[0].weight.detach().clone()

    logits = model(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, NUM_CLASSES)
    F.cross_entropy(logits, torch.tensor([0, 3])).backward()
    _assert_finite_grads(model)
    assert resizer.stem[0].weight.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.equal(resizer.stem[0].weight, before)
