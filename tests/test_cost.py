"""Parameter and MAC counting: conventions, hand-checked figures, and ResNet-50 against the quoted 4.1 G."""

from __future__ import annotations

import pytest
import timm
from torch import nn

from pipeline.models.cost import (
    MACS_TOOL,
    count_conv_weights,
    count_macs,
    count_trainable_params,
    gmacs,
)
from pipeline.models.resizer import LearnedResizer


def _small_net() -> nn.Sequential:
    # conv 3->8 3x3 (216 weights + 8 biases), BN (16), pool, linear 8->2 (16 + 2)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 2),
    )


def test_count_trainable_params_skips_frozen() -> None:
    net = _small_net()
    assert count_trainable_params(net) == 216 + 8 + 16 + 16 + 2
    net[1].requires_grad_(False)
    assert count_trainable_params(net) == 216 + 8 + 16 + 2


def test_count_conv_weights_is_kernels_only() -> None:
    net = _small_net()
    assert count_conv_weights(net) == 216  # no bias, no BN, no linear
    assert count_conv_weights(nn.Conv1d(4, 6, 5, groups=2)) == 6 * 2 * 5


def test_count_macs_hand_checked_small_net() -> None:
    # conv: 10*12 outputs per channel, 8 channels, 3*3*3 MACs each; linear: 8*2
    assert count_macs(_small_net(), (10, 12)) == 10 * 12 * 8 * 27 + 8 * 2


def test_count_macs_is_per_image_and_counts_grouped_convs() -> None:
    depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
    assert count_macs(depthwise, 6, in_chans=8) == 6 * 6 * 8 * 9


def test_count_macs_restores_train_eval_state() -> None:
    net = _small_net().train()
    net[1].eval()  # e.g. a frozen BN inside a training model
    before = [m.training for m in net.modules()]
    count_macs(net, 8)
    assert [m.training for m in net.modules()] == before
    assert before.count(False) == 1  # the check above compares a mixed state, not all-True


def test_gmacs_is_macs_over_1e9() -> None:
    net = _small_net()
    assert gmacs(net, 10) == pytest.approx(count_macs(net, 10) / 1e9)


def test_resizer_macs_368_to_224_by_hand() -> None:
    """r=1, n=16: 7x7 and 1x1 convs at 368x368, everything else at 224x224."""
    n, big, small = 16, 368 * 368, 224 * 224
    conv7_in = big * (7 * 7 * 3 * n)  # 135,424 * 2,352 = 318,517,248
    conv1x1 = big * (n * n)  # 135,424 * 256 = 34,668,544
    block = 2 * small * (3 * 3 * n * n)  # 2 * 50,176 * 2,304 = 231,211,008
    fuse = small * (3 * 3 * n * n)  # 50,176 * 2,304 = 115,605,504
    conv7_out = small * (7 * 7 * n * 3)  # 50,176 * 2,352 = 118,013,952
    expected = conv7_in + conv1x1 + block + fuse + conv7_out
    assert expected == 818_016_256
    assert count_macs(LearnedResizer(224, n=16, r=1), 368) == expected


def test_resnet50_macs_match_quoted_4_1_g(capsys: pytest.CaptureFixture[str]) -> None:
    measured = gmacs(timm.create_model("resnet50", pretrained=False), 224)
    with capsys.disabled():
        print(f"\nResNet-50 @224: {measured:.4f} GMACs ({MACS_TOOL})")
    assert measured == pytest.approx(4.1, rel=0.02)
