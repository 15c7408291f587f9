"""Losses of the IQA task (NIMA protocol): EMD between distributions over ordered score bins."""

from __future__ import annotations

import torch


def emd_loss(pred: torch.Tensor, target: torch.Tensor, r: float = 2.0) -> torch.Tensor:
    """Earth mover's distance between distributions over N ordered bins, mean over the batch.

    ``EMD = (mean_k |CDF_p(k) - CDF_q(k)|^r)^(1/r)`` (Talebi & Milanfar, NIMA), with ``pred`` and
    ``target`` of shape (B, N), each row a distribution (non-negative, summing to 1); r=2 is the
    paper's choice. Rows that do not sum to 1 are an error rather than silently renormalised.
    """
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(f"pred and target must both be (B, N); got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    for name, dist in (("pred", pred), ("target", target)):
        sums = dist.sum(dim=1)
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
            raise ValueError(f"{name} rows must sum to 1 (a distribution over the bins); got sums "
                             f"in [{float(sums.min()):.4f}, {float(sums.max()):.4f}]")
    cdf_gap = torch.cumsum(pred, dim=1) - torch.cumsum(target, dim=1)  # (B, N)
    per_sample = cdf_gap.abs().pow(r).mean(dim=1).pow(1.0 / r)  # (B,)
    return per_sample.mean()
