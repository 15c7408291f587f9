"""How much a number moves by chance: standard errors from the number of evaluated images,
and the test tables use to tell a difference from noise. No torch: the tables stage uses it."""

from __future__ import annotations

import math


def chance_error(classes: int) -> float:
    """Top-1 error (%) of a uniform guess among ``classes``."""
    return 100.0 * (1.0 - 1.0 / classes)


def error_se(error_pct: float, images: int) -> float:
    """Binomial standard error (percentage points) of an error rate measured on ``images``."""
    p = min(max(error_pct / 100.0, 0.0), 1.0)
    return 100.0 * math.sqrt(p * (1.0 - p) / max(images, 1))


def correlation_se(rho: float, images: int) -> float:
    """Approximate standard error of a correlation on ``images`` pairs,
    (1 - rho^2) / sqrt(N - 3)."""
    return (1.0 - min(rho * rho, 1.0)) / math.sqrt(max(images - 3, 1))


def mean_se(std: float | None, se: float, runs: int) -> float:
    """Standard error of a mean over ``runs`` seeds: the larger of the seed-to-seed spread
    (``std``, sample std; None or NaN with one run) and the per-run image noise ``se``,
    divided by sqrt(runs). Taking the larger keeps one lucky pair of seeds from looking
    precise."""
    spread = se if std is None or math.isnan(std) else max(std, se)
    return spread / math.sqrt(max(runs, 1))


def resolved(diff: float, se_a: float, se_b: float, z: float = 2.0) -> bool:
    """Whether a difference of two independent means exceeds ``z`` standard errors."""
    return abs(diff) > z * math.hypot(se_a, se_b)
