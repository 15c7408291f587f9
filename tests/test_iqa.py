"""EMD against hand-computed values; IQA metrics against scipy; the head outputs a distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest
import timm
import torch
from scipy import stats

import pipeline.models  # noqa: F401  (registers resnet_tiny)
from pipeline.training.iqa import DistributionHead, iqa_metrics, mean_score, std_score
from pipeline.training.losses import emd_loss


def one_hot(index: int, bins: int = 10) -> torch.Tensor:
    row = torch.zeros(1, bins)
    row[0, index] = 1.0
    return row


def test_identical_distributions_give_zero():
    p = torch.softmax(torch.randn(4, 10), dim=1)
    assert float(emd_loss(p, p.clone())) == pytest.approx(0.0, abs=1e-7)


def test_known_shift_by_hand():
    # all mass on score 3 vs all on score 6: CDFs differ by 1 at k = 3, 4, 5 (three of ten bins)
    # EMD = (mean_k |dCDF|^2)^(1/2) = sqrt(3/10); comparing the bins themselves would give sqrt(2/10)
    assert float(emd_loss(one_hot(2), one_hot(5))) == pytest.approx(math.sqrt(0.3))


def test_half_mass_moved_by_one_bin_by_hand():
    # p = [0.5, 0.5, 0...], q = [0, 1, 0...]: dCDF = 0.5 at k=1 only -> sqrt(0.25/10)
    p = torch.zeros(1, 10)
    p[0, :2] = 0.5
    assert float(emd_loss(p, one_hot(1))) == pytest.approx(math.sqrt(0.025))


def test_r1_is_mean_absolute_cdf_gap_and_batch_mean():
    a = torch.cat([one_hot(0), one_hot(9)])
    b = torch.cat([one_hot(9), one_hot(9)])
    # row 0: dCDF = 1 for k = 1..9 (9 bins) -> 0.9 with r=1; row 1: 0
    assert float(emd_loss(a, b, r=1)) == pytest.approx(0.45)


def test_symmetric_and_rejects_non_distributions():
    p, q = torch.softmax(torch.randn(3, 10), 1), torch.softmax(torch.randn(3, 10), 1)
    assert float(emd_loss(p, q)) == pytest.approx(float(emd_loss(q, p)))
    with pytest.raises(ValueError, match="sum to 1"):
        emd_loss(torch.ones(2, 10), q[:2])
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        emd_loss(p, q[:, :5])


def test_mean_and_std_scores():
    uniform = torch.full((1, 10), 0.1)
    assert float(mean_score(uniform)) == pytest.approx(5.5)
    assert float(std_score(uniform)) == pytest.approx(math.sqrt(8.25))
    assert float(std_score(one_hot(6))) == pytest.approx(0.0, abs=1e-6)


def test_metrics_against_scipy():
    gen = torch.Generator().manual_seed(0)
    target = torch.softmax(torch.randn(50, 10, generator=gen) * 2, dim=1)
    pred = torch.softmax(torch.log(target + 1e-3) + 0.5 * torch.randn(50, 10, generator=gen), 1)
    m = iqa_metrics(pred, target)
    scores = torch.arange(1, 11, dtype=torch.float32)
    pm, tm = (pred * scores).sum(1).numpy(), (target * scores).sum(1).numpy()
    assert m["plcc_mean"] == pytest.approx(stats.pearsonr(pm, tm)[0])
    assert m["srcc_mean"] == pytest.approx(stats.spearmanr(pm, tm)[0])
    assert m["accuracy"] == pytest.approx(np.mean((pm > 5) == (tm > 5)))
    assert 0 < m["emd"] < 1 and m["plcc_mean"] > 0.3
    perfect = iqa_metrics(target, target)
    assert perfect["plcc_mean"] == pytest.approx(1.0) and perfect["emd"] == pytest.approx(0.0,
                                                                                          abs=1e-6)


def test_head_outputs_a_distribution():
    model = DistributionHead(timm.create_model("resnet_tiny", num_classes=10))
    out = model(torch.randn(3, 3, 32, 32))
    assert out.shape == (3, 10) and (out >= 0).all()
    assert torch.allclose(out.sum(1), torch.ones(3), atol=1e-6)
    emd_loss(out, torch.full((3, 10), 0.1)).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
