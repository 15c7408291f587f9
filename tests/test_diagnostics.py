"""Run health and resizer diagnostics: a diverged or at-chance run is flagged, a zero-init
resizer is exactly its skip, the bound holds, and the high-band transfer tells an antialiased
resize from a plain one."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.core.noise import chance_error, error_se, mean_se, resolved
from pipeline.models import build_resizer
from pipeline.models.band_energy import BandEnergyResizer
from pipeline.models.resizer import LearnedResizer
from pipeline.training.diagnostics import (AT_CHANCE, DIVERGED, OK, first_images, health,
                                           high_band_transfer, reference_resizers,
                                           resizer_diagnostics)
from tests.conftest import resizer_spec


@pytest.mark.parametrize("loss, err, expected", [
    (1.2, 30.0, OK),
    (math.log(12) + 0.01, 30.0, DIVERGED),  # train loss above a uniform guess
    (3.9, 90.3, DIVERGED),  # the old MobileNetV2 run
    (1.9, 90.0, AT_CHANCE),  # trains, but validation within noise of chance (91.7%)
    (float("nan"), 10.0, DIVERGED),
])
def test_classification_health(loss, err, expected):
    assert health("classification", loss, {"top1_err": err}, 360, 12) == expected


def test_iqa_health():
    assert health("iqa", 0.2, {"srcc_mean": 0.05}, 160, 10) == AT_CHANCE
    assert health("iqa", 0.2, {"srcc_mean": 0.6}, 160, 10) == OK


def test_noise_arithmetic():
    assert math.isclose(chance_error(4), 75.0)
    assert math.isclose(error_se(50.0, 100), 5.0)
    assert mean_se(float("nan"), 2.0, 1) == 2.0
    assert math.isclose(mean_se(4.0, 2.0, 4), 2.0)  # the larger of spread and image noise
    assert resolved(10.0, 2.0, 2.0) and not resolved(5.0, 2.0, 2.0)


def test_zero_init_resizer_equals_its_skip_exactly():
    torch.manual_seed(0)
    resizer = build_resizer(resizer_spec("learned", 16, 2, 8, zero_init=True)).train()
    x = torch.randn(4, 3, 40, 40)
    skip = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.equal(resizer(x), skip)
    assert not torch.equal(build_resizer(resizer_spec("learned", 16, 2, 8))(x), skip)


def test_bound_limits_the_residual():
    torch.manual_seed(0)
    resizer = LearnedResizer(16, n=8, r=1, bound=0.5)
    torch.nn.init.normal_(resizer.final.weight, std=10.0)
    skip, residual = resizer.skip_and_residual(torch.randn(2, 3, 32, 32))
    assert residual.abs().max() <= 0.5 and residual.abs().max() > 0.4
    with pytest.raises(ValueError, match="bound"):
        LearnedResizer(16, n=4, r=1, bound=0.0)


def fine_images() -> torch.Tensor:
    """Images with energy on both sides of a 32-px output's Nyquist frequency."""
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    fine = torch.sin(2 * math.pi * 0.4 * xx)  # above 0.25 cycles/px: lost at 32 px
    coarse = torch.sin(2 * math.pi * 0.05 * yy)
    return (fine + coarse).expand(2, 3, 64, 64).clone()


def test_high_band_transfer_orders_the_resizers():
    images = fine_images()
    refs = reference_resizers(32)
    aa = high_band_transfer(refs["bilinear_aa"], images, 32)
    plain = high_band_transfer(refs["bilinear_noaa"], images, 32)
    assert aa < 0.1 and plain > 2 * aa
    band = high_band_transfer(BandEnergyResizer(32), images, 32)
    assert band > 1.0  # carries the band as energy


def test_resizer_diagnostics_fields():
    torch.manual_seed(0)
    found = resizer_diagnostics(LearnedResizer(32, n=4, r=1, zero_init=True), fine_images(), 32)
    assert found["residual_peak"] == 0 and found["residual_rms"] == 0
    assert math.isclose(found["hf_transfer"], found["hf_transfer_bilinear_noaa"], rel_tol=1e-6)
    fixed = resizer_diagnostics(build_resizer(resizer_spec("bilinear_noaa", 32)), fine_images(),
                                32)
    assert "residual_peak" not in fixed


def test_first_images_skips_padding_and_stops():
    batches = [(torch.zeros(0, 3, 4, 4), None), (torch.ones(3, 3, 4, 4), None),
               (torch.ones(3, 3, 4, 4), None), (torch.ones(3, 3, 4, 4), None)]
    assert first_images(batches, 5).shape == (5, 3, 4, 4)
