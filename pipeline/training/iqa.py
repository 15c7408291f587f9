"""Image quality assessment (NIMA protocol on AVA): the distribution head and the test metrics.

A classification backbone becomes a rating model by replacing its last layer with 10 logits and
a softmax: a predicted distribution over scores 1..10. Reported on the test split: PLCC and SRCC
between predicted and human mean scores, the same for standard deviations, binary accuracy with
threshold 5 on the mean score, and EMD.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline.training.losses import emd_loss

BINS = 10
SCORES = torch.arange(1, BINS + 1, dtype=torch.float32)  # scores 1..10
THRESHOLD = 5.0


class DistributionHead(nn.Module):
    """``softmax(model(x))``: a model with ``BINS`` logits turned into a rating distribution."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, BINS)
        return torch.softmax(self.model(x), dim=1)


def mean_score(dist: torch.Tensor) -> torch.Tensor:
    """Sum_k k p(k) for each row of a (B, BINS) distribution."""
    return dist @ SCORES.to(dist)


def std_score(dist: torch.Tensor) -> torch.Tensor:
    """Standard deviation of the score under each row's distribution."""
    mean = mean_score(dist)[:, None]
    return ((SCORES.to(dist)[None, :] - mean) ** 2 * dist).sum(dim=1).sqrt()


def iqa_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """PLCC/SRCC of mean scores and of std, binary accuracy (threshold 5) and EMD, over a split."""
    from scipy import stats  # here, not at the top: it costs every training process a second

    if len(pred) < 3:
        raise ValueError(f"need at least 3 images for correlations, got {len(pred)}")
    pm, tm = mean_score(pred).numpy(), mean_score(target).numpy()
    ps, ts = std_score(pred).numpy(), std_score(target).numpy()
    return {"plcc_mean": float(stats.pearsonr(pm, tm)[0]),
            "srcc_mean": float(stats.spearmanr(pm, tm)[0]),
            "plcc_std": float(stats.pearsonr(ps, ts)[0]),
            "srcc_std": float(stats.spearmanr(ps, ts)[0]),
            "accuracy": float(np.mean((pm > THRESHOLD) == (tm > THRESHOLD))),
            "emd": float(emd_loss(pred, target, r=2.0))}
