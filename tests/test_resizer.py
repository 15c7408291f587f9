"""LearnedResizer: shapes, the paper's Fig. 3 wiring, parameter count, argument validation, gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.models.cost import count_conv_weights, count_trainable_params
from pipeline.models.resizer import LearnedResizer, output_size_of


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize(
    ("in_hw", "output_size", "out_hw"),
    [
        ((64, 64), 32, (32, 32)),  # down, int output size
        ((32, 32), 64, (64, 64)),  # up
        ((50, 70), (24, 40), (24, 40)),  # non-square, both aspect ratios differ
        ((31, 17), (17, 31), (17, 31)),  # up in one dim, down in the other
    ],
)
def test_output_shape(
    in_hw: tuple[int, int], output_size: int | tuple[int, int], out_hw: tuple[int, int]
) -> None:
    resizer = LearnedResizer(output_size, n=4, r=1)
    out = resizer(torch.randn(2, 3, *in_hw))
    assert out.shape == (2, 3, *out_hw)


@pytest.mark.parametrize(
    ("interpolation", "antialias"),
    [("bicubic", False), ("nearest", False), ("area", False), ("bilinear", True)],
)
def test_other_interpolations_give_the_same_shape(interpolation: str, antialias: bool) -> None:
    resizer = LearnedResizer((12, 20), n=4, r=1, interpolation=interpolation, antialias=antialias)
    assert resizer(torch.randn(2, 3, 40, 30)).shape == (2, 3, 12, 20)


def test_output_size_of_normalises_int_and_pair() -> None:
    assert output_size_of(7) == (7, 7)
    assert output_size_of((3, 5)) == (3, 5)
    assert output_size_of([3, 5]) == (3, 5)  # YAML gives lists


def test_paper_default_has_12035_trainable_params() -> None:
    resizer = LearnedResizer(224, n=16, r=1)
    assert count_trainable_params(resizer) == 12_035
    assert count_conv_weights(resizer) == 11_872


def test_blocks_are_chained() -> None:
    """Each residual block must receive the previous block's output (not the shared feature map)."""
    resizer = LearnedResizer(16, n=4, r=3)
    inputs: list[torch.Tensor] = []
    outputs: list[torch.Tensor] = []

    def record(_module: torch.nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        inputs.append(args[0])
        outputs.append(out)

    for block in resizer.blocks:
        block.register_forward_hook(record)
    resizer(torch.randn(2, 3, 24, 24))
    assert len(inputs) == 3
    for i in (1, 2):
        assert inputs[i] is outputs[i - 1]
        # the known bug feeds every block the same tensor; the inputs must differ
        assert not torch.allclose(inputs[i], inputs[0])


def test_every_block_contributes_to_the_fused_features() -> None:
    """Make each block add exactly 1 to its input: chained blocks give f + r before the fuse conv.

    With the known bug (every block fed ``f``, the last block's output kept) this would be ``f + 1``.
    """
    r = 3
    resizer = LearnedResizer((10, 14), n=4, r=r).eval()
    with torch.no_grad():
        for block in resizer.blocks:
            block.bn2.weight.zero_()
            block.bn2.bias.fill_(1.0)
    captured: dict[str, torch.Tensor] = {}
    resizer.stem.register_forward_hook(lambda _m, _a, out: captured.__setitem__("stem", out))
    resizer.fuse.register_forward_hook(lambda _m, args, _o: captured.__setitem__("fuse_in", args[0]))
    with torch.no_grad():
        resizer(torch.randn(1, 3, 20, 18))
    f = F.interpolate(captured["stem"], size=(10, 14), mode="bilinear", align_corners=False)
    torch.testing.assert_close(captured["fuse_in"], f + r)


def test_output_is_bilinear_image_plus_learned_residual() -> None:
    resizer = LearnedResizer((24, 40), n=4, r=2)
    x = torch.randn(2, 3, 50, 70)
    bilinear = F.interpolate(x, size=(24, 40), mode="bilinear", align_corners=False)
    # with random init the residual is not zero, so the comparison below is not trivially true
    assert not torch.allclose(resizer(x), bilinear, atol=1e-3)
    with torch.no_grad():
        resizer.final.weight.zero_()
        resizer.final.bias.zero_()
    assert torch.equal(resizer(x), bilinear)


def test_gradient_reaches_every_parameter() -> None:
    resizer = LearnedResizer((12, 12), n=4, r=2).train()
    out = resizer(torch.randn(2, 3, 20, 20))
    (out * torch.randn_like(out)).sum().backward()
    for name, p in resizer.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"n": 0}, "n must"),
        ({"r": 0}, "r must"),
        ({"r": -2}, "r must"),
        ({"r": 1.5}, "r must"),
        ({"interpolation": "lanczos"}, "interpolation must"),
        ({"interpolation": "nearest", "antialias": True}, "antialias"),
        ({"output_size": 0}, "output_size must"),
        ({"output_size": (8,)}, "output_size must"),
        ({"output_size": 2.5}, "output_size must"),
        ({"output_size": True}, "output_size must"),
    ],
)
def test_invalid_arguments_raise_naming_the_argument(kwargs: dict, argument: str) -> None:
    kwargs = {"output_size": 8, "n": 4, "r": 1, **kwargs}
    with pytest.raises(ValueError, match=argument):
        LearnedResizer(**kwargs)


def test_range_is_stated_in_the_message() -> None:
    with pytest.raises(ValueError, match=r"r must be an int >= 1.*got 0"):
        LearnedResizer(8, n=4, r=0)


def test_rejects_non_rgb_input() -> None:
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        LearnedResizer(8, n=4, r=1)(torch.randn(1, 1, 16, 16))


def test_extra_repr_names_the_configuration() -> None:
    text = repr(LearnedResizer((24, 40), n=8, r=2, interpolation="bicubic"))
    assert "output_size=(24, 40), n=8, r=2, interpolation='bicubic'" in text
