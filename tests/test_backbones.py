"""Every backbone of the default run and of the paper preset, with every registered resizer,
builds through the registries, trains (forward + backward) and has its cost counted.

The lists follow the registries and the configurations (as timm's tests follow
``list_models()``): a backbone added to either params file, or a resizer registered with
``register_resizer``, is tested here without editing this file. 64 px in, 32 px to the
backbone: the same code paths as the paper's 224 px (stride, pooling, head) at a fraction of
the CPU time.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from pipeline.models import RESIZERS, build_model
from pipeline.models.cost import count_macs, count_trainable_params
from tests.conftest import ROOT, resizer_spec


def _backbones() -> list[str]:
    names: set[str] = set()
    for path in (ROOT / "params.yaml", ROOT / "workflow/presets/paper.yaml"):
        names |= set(yaml.safe_load(path.read_text())["classification"]["backbones"])
    return sorted(names)


BACKBONES = _backbones()
NUM_CLASSES = 10
INPUT, MODEL = 64, 32


def _assert_finite_grads(model: nn.Module) -> None:
    """Every trainable parameter received a finite gradient."""
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing[:5]} ({len(missing)} in all)"
    bad = [name for name, p in model.named_parameters()
           if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradient for {bad[:5]}"


def test_the_paper_backbones_are_covered():
    assert {"bninception", "densenet121", "resnet50", "mobilenetv2_100",
            "efficientnet_b0"} <= set(BACKBONES)


@pytest.mark.parametrize("resizer", sorted(RESIZERS))
@pytest.mark.parametrize("backbone", BACKBONES)
def test_backbone_with_resizer_trains_and_is_costed(backbone: str, resizer: str) -> None:
    torch.manual_seed(0)
    model = build_model(backbone, resizer_spec(resizer, MODEL, 1, 4), NUM_CLASSES).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    before = [p.detach().clone() for p in model.resizer.parameters()]
    logits = model(torch.randn(2, 3, INPUT, INPUT))
    assert logits.shape == (2, NUM_CLASSES)
    F.cross_entropy(logits, torch.tensor([1, 7])).backward()
    _assert_finite_grads(model)
    optimizer.step()
    assert all(not torch.equal(p, b) for p, b in zip(model.resizer.parameters(), before)), (
        "a trainable resizer's parameters change in a step")
    assert count_macs(model, INPUT) > 0 and count_trainable_params(model) > 0


def test_a_fresh_muller_resizer_is_bilinear_without_antialias_and_has_4_parameters():
    from pipeline.models import TRAINABLE, build_resizer

    torch.manual_seed(0)
    resizer = build_resizer(resizer_spec("muller", 16))
    x = torch.rand(2, 3, 37, 29)
    plain = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False,
                          antialias=False)
    assert torch.equal(resizer(x), plain)
    assert sum(p.numel() for p in resizer.parameters() if p.requires_grad) == 4
    assert "muller" in TRAINABLE and set(resizer.state_dict()) == {"weights", "biases"}
    with torch.no_grad():
        resizer.weights.fill_(1.0)
    boosted = resizer(x)
    assert boosted.shape == plain.shape and not torch.allclose(boosted, plain)
    skip, residual = resizer.skip_and_residual(x)  # what the diagnostics measure
    assert torch.equal(skip, plain) and torch.equal(skip + residual, boosted)
    # a constant image has no detail to add back
    flat = torch.full((1, 3, 32, 32), 0.5)
    assert torch.allclose(resizer(flat), torch.full((1, 3, 16, 16), 0.5), atol=1e-6)
