"""BN-Inception: timm registration and interface, the Caffe layout's widths, cost, small inputs."""

from __future__ import annotations

import warnings

import pytest
import timm
import torch
from torch import nn

import pipeline.models.bninception as bninception_module
from pipeline.models.bninception import BNInception, register_bninception
from pipeline.models.cost import count_trainable_params, gmacs


@pytest.fixture(scope="module")
def model10() -> BNInception:
    torch.manual_seed(0)
    return timm.create_model("bninception", num_classes=10, pretrained=False).eval()


def test_registered_once_and_reregistration_is_a_quiet_no_op() -> None:
    assert timm.list_models("bninception") == ["bninception"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # timm warns when a name is overwritten
        assert register_bninception() is False
    assert timm.list_models("bninception") == ["bninception"]
    assert timm.models.model_entrypoint("bninception").__module__ == bninception_module.__name__


def test_pretrained_cfg_names_real_layers(model10: BNInception) -> None:
    cfg = model10.pretrained_cfg
    assert cfg["input_size"] == (3, 224, 224)
    assert cfg["num_classes"] == 1000
    assert not cfg["url"]
    assert isinstance(model10.get_submodule(cfg["first_conv"]), nn.Conv2d)
    assert model10.get_submodule(cfg["classifier"]) is model10.get_classifier()


def test_pretrained_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="pretrained=False"):
        timm.create_model("bninception", pretrained=True)


def test_caffe_layout_widths() -> None:
    """Output channels of each module as in the Caffe prototxt / Ioffe & Szegedy Fig. 5."""
    expected = {
        "3a": 256, "3b": 320, "3c": 576, "4a": 576, "4b": 576,
        "4c": 608, "4d": 608, "4e": 1056, "5a": 1024, "5b": 1024,
    }  # fmt: skip
    model = BNInception(num_classes=0)
    got = {name: getattr(model, f"inception_{name}").out_chs for name in expected}
    assert got == expected
    assert isinstance(model.inception_5a.pool, nn.AvgPool2d)
    assert isinstance(model.inception_5b.pool, nn.MaxPool2d)


def test_param_count_and_gmacs_at_224() -> None:
    model = BNInception(num_classes=1000)
    assert count_trainable_params(model) == 11_295_240
    assert f"{gmacs(model, 224):.3g}" == "2.03"


@pytest.mark.parametrize(("size", "final_hw"), [(32, 1), (33, 1), (64, 2), (72, 3)])
def test_small_and_odd_inputs(model10: BNInception, size: int, final_hw: int) -> None:
    """72 gives an odd 9x9 map at 3c, where Caffe's unpadded ceil-mode pool would break the concat."""
    with torch.no_grad():
        features = model10.forward_features(torch.randn(1, 3, size, size))
        logits = model10.forward_head(features)
    assert features.shape == (1, 1024, final_hw, final_hw)
    assert logits.shape == (1, 10)


def test_timm_head_interface() -> None:
    model = timm.create_model("bninception", num_classes=10, drop_rate=0.3, global_pool="max").eval()
    x = torch.randn(2, 3, 64, 64)
    assert model.num_features == 1024
    assert model.head_drop.p == 0.3
    assert model.global_pool.pool_type == "max"
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 1024)
    model.reset_classifier(5)
    assert model.get_classifier().out_features == 5
    assert model(x).shape == (2, 5)
    model.reset_classifier(0, global_pool="avg")
    assert model(x).shape == (2, 1024)


def test_in_chans() -> None:
    model = timm.create_model("bninception", num_classes=3, in_chans=1).eval()
    assert model.conv1.conv.in_channels == 1
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 3)


def test_features_only() -> None:
    model = timm.create_model("bninception", features_only=True).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 64, 64))
    assert model.feature_info.channels() == [64, 192, 320, 608, 1024]
    assert [f.shape[1:] for f in feats] == [
        (c, 64 // r, 64 // r) for c, r in zip([64, 192, 320, 608, 1024], [2, 4, 8, 16, 32], strict=True)
    ]
