"""The validity probe: is a cue recoverable from the images a model actually sees?

A fixed, training-free feature map (log spectral energy of the luminance in radial x
orientation bands, plus the mean colour) feeds a multinomial logistic regression that is fit
on the train split and scored on the validation split. Run on the default pipeline's inputs
at the model size and on the inputs at the learned resizer's input size, it says whether the
embedded benchmark does what it claims: the fine cue unreadable at the model size (error near
chance) and readable at the input size (error near zero). The probe is deliberately strong
for texture (a linear read-out of every frequency band and orientation), so "near chance"
means the energy is gone, not that the read-out was weak.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

#: Radial bands (cycles per pixel) and orientation bins of the spectral features.
RADIAL_BANDS = 8
ORIENTATIONS = 4
#: Roles of the probed sizes: the default pipeline's input to the model, a resizer's input.
MODEL_ROLE = "model size (default pipeline)"
INPUT_ROLE = "resizer input"


def luminance(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) images, any affine scale per channel -> (N, H, W) Rec. 601 luma."""
    weights = images.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1)


def band_index(height: int, width: int) -> torch.Tensor:
    """(H, W) feature index of each FFT bin (radial band x orientation), -1 for DC."""
    fy = torch.fft.fftfreq(height).view(-1, 1).expand(height, width)
    fx = torch.fft.fftfreq(width).view(1, -1).expand(height, width)
    radius = torch.hypot(fy, fx)
    ring = torch.clamp((radius / 0.5 * RADIAL_BANDS).long(), max=RADIAL_BANDS - 1)
    theta = torch.remainder(torch.atan2(fy, fx) + math.pi / (2 * ORIENTATIONS), math.pi)
    sector = torch.clamp((theta / math.pi * ORIENTATIONS).long(), max=ORIENTATIONS - 1)
    index = ring * ORIENTATIONS + sector
    index[radius == 0] = -1
    return index


def spectral_features(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, RADIAL_BANDS * ORIENTATIONS + 3): log mean power of the windowed
    luminance per band and orientation, then the mean of each channel."""
    _, _, height, width = images.shape
    luma = luminance(images.double())
    luma = luma - luma.mean(dim=(1, 2), keepdim=True)
    window = torch.outer(torch.hann_window(height, periodic=False, dtype=torch.float64),
                         torch.hann_window(width, periodic=False, dtype=torch.float64))
    power = torch.fft.fft2(luma * window).abs().pow(2).flatten(1)  # (N, H*W)
    index = band_index(height, width).flatten()
    keep = index >= 0
    bands = RADIAL_BANDS * ORIENTATIONS
    sums = torch.zeros(len(images), bands, dtype=torch.float64).index_add_(
        1, index[keep], power[:, keep])
    counts = torch.bincount(index[keep], minlength=bands).clamp(min=1)
    energy = torch.log(sums / counts + 1e-12)
    return torch.cat([energy, images.double().mean(dim=(2, 3))], dim=1)


@dataclass(frozen=True)
class ProbeFit:
    """A fitted linear probe: feature standardisation and the logistic-regression weights."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor  # (features, classes)
    bias: torch.Tensor  # (classes,)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Class index per row of ``features``."""
        logits = ((features - self.mean) / self.std) @ self.weight + self.bias
        return logits.argmax(dim=1)


def fit_probe(features: torch.Tensor, labels: torch.Tensor, classes: int, *,
              l2: float = 1e-3, steps: int = 200) -> ProbeFit:
    """Multinomial logistic regression (L-BFGS, L2 on the weights) on standardised features.
    Deterministic: float64, full batch, zero start."""
    mean, std = features.mean(dim=0), features.std(dim=0).clamp(min=1e-6)
    x = (features - mean) / std
    weight = torch.zeros(x.shape[1], classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=steps, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight + bias, labels)
        loss = loss + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return ProbeFit(mean, std, weight.detach(), bias.detach())


def probe_error(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                classes: int) -> float:
    """Test error (fraction) of a probe fit on ``train``; each is (features, labels)."""
    fit = fit_probe(*train, classes)
    return float((fit.predict(test[0]) != test[1]).double().mean())


def majority_error(labels: torch.Tensor, classes: int) -> float:
    """Error of always guessing the most frequent class."""
    counts = torch.bincount(labels, minlength=classes)
    return 1.0 - float(counts.max()) / len(labels)


# --- the probe table of a prepared classification set -------------------------------------

@dataclass(frozen=True)
class ProbeRow:
    """One probe: a target read from the inputs at one size."""

    target: str  # "class" or "fine cue"
    size: int
    role: str  # "model size (default pipeline)" or "resizer input"
    error: float  # test error, fraction
    chance: float  # error of guessing the most frequent class, fraction
    train_images: int
    test_images: int

    @property
    def share(self) -> float:
        """Error as a share of chance: 0 = read perfectly, 1 = not at all."""
        return self.error / self.chance if self.chance > 0 else 0.0


def probe_rows(features: dict[int, tuple[torch.Tensor, torch.Tensor]],
               labels: tuple[torch.Tensor, torch.Tensor], roles: dict[int, str],
               targets: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], int]]
               ) -> list[ProbeRow]:
    """A row per target and size. ``features[size]`` = (train, test) feature matrices,
    ``labels`` = (train, test) class indices, ``targets[name]`` = (label map, classes)."""
    rows = []
    for name, (to_target, classes) in targets.items():
        train_y, test_y = to_target(labels[0]), to_target(labels[1])
        for size, (train_x, test_x) in features.items():
            rows.append(ProbeRow(name, size, roles[size],
                                 probe_error((train_x, train_y), (test_x, test_y), classes),
                                 majority_error(test_y, classes), len(train_y), len(test_y)))
    return rows


def gate_problems(rows: Sequence[ProbeRow], *, max_model_error_share: float,
                  max_input_error: float, target: str = "fine cue") -> list[str]:
    """Why a benchmark is invalid: its fine cue readable at the model size, or unreadable at
    a resizer's input size (empty when it is valid)."""
    problems = []
    for row in rows:
        if row.target != target:
            continue
        if row.role == MODEL_ROLE and row.share < max_model_error_share:
            problems.append(
                f"the {target} survives the default pipeline at {row.size} px: probe error "
                f"{row.error:.1%} is {row.share:.2f} of chance ({row.chance:.1%}), below "
                f"probe.max_model_error_share = {max_model_error_share} (by "
                f"{max_model_error_share - row.share:.2f}); a resizer would have nothing lost "
                f"to recover. Move synthetic.imagenet.fine_cycles further above the model "
                f"size's Nyquist or raise nuisance_amplitude")
        if row.role == INPUT_ROLE and row.error > max_input_error:
            problems.append(
                f"the {target} is not readable at the resizer's input size {row.size} px: "
                f"probe error {row.error:.1%} exceeds probe.max_input_error = "
                f"{max_input_error:.1%} (by {row.error - max_input_error:.1%}); there is nothing "
                f"for a resizer to carry. Lower synthetic.imagenet.fine_cycles below the input "
                f"size's Nyquist or raise fine_amplitude")
    return problems


def attenuated_problems(rows: Sequence[ProbeRow], *, max_model_error_share: float,
                        min_model_loss: float, max_input_error: float,
                        target: str = "fine cue") -> list[str]:
    """Why a benchmark is not in the second regime (empty when it is): its fine cue must be
    readable at the model size (probe error at most ``max_model_error_share`` of chance), yet
    attenuated there (error at least ``min_model_loss`` above the best input size's), and
    readable at every input size (error at most ``max_input_error``)."""
    mine = [row for row in rows if row.target == target]
    inputs = [row for row in mine if row.role == INPUT_ROLE]
    problems = [f"the {target} is not readable at the resizer's input size {row.size} px: "
                f"probe error {row.error:.1%} exceeds probe.max_input_error = "
                f"{max_input_error:.1%}; raise synthetic.attenuated's fine_amplitude"
                for row in inputs if row.error > max_input_error]
    best = min((row.error for row in inputs), default=0.0)
    for row in mine:
        if row.role != MODEL_ROLE:
            continue
        if row.share > max_model_error_share:
            problems.append(
                f"the {target} is not readable at the model size {row.size} px: probe error "
                f"{row.error:.1%} is {row.share:.2f} of chance ({row.chance:.1%}), above "
                f"probe.attenuated.max_model_error_share = {max_model_error_share}; this is the "
                f"first regime, not the second: lower synthetic.attenuated's fine_cycles or "
                f"nuisance_amplitude")
        if row.error - best < min_model_loss:
            problems.append(
                f"the {target} is not attenuated at the model size {row.size} px: probe error "
                f"{row.error:.1%} is only {row.error - best:.1%} above the input size's "
                f"({best:.1%}), below probe.attenuated.min_model_loss = {min_model_loss:.1%}; "
                f"raise synthetic.attenuated's fine_cycles toward the model size's Nyquist or "
                f"its nuisance_amplitude")
    return problems


# --- the quality probe of a prepared IQA set ----------------------------------------------

@dataclass(frozen=True)
class RidgeFit:
    """A fitted ridge regression on standardised features."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor  # (features,)
    bias: float

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """A prediction per row of ``features``."""
        return ((features - self.mean) / self.std) @ self.weight + self.bias


def fit_ridge(features: torch.Tensor, targets: torch.Tensor, *, l2: float = 1.0) -> RidgeFit:
    """Ridge regression (closed form, float64) of ``targets`` on standardised ``features``."""
    features, targets = features.double(), targets.double()
    mean, std = features.mean(dim=0), features.std(dim=0).clamp(min=1e-6)
    x = (features - mean) / std
    gram = x.T @ x + l2 * torch.eye(x.shape[1], dtype=torch.float64)
    weight = torch.linalg.solve(gram, x.T @ (targets - targets.mean()))
    return RidgeFit(mean, std, weight, float(targets.mean()))


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rank correlation (ties get their mean rank)."""
    from scipy import stats  # here, not at the top: the classification probe never needs it

    return float(stats.spearmanr(a.numpy(), b.numpy())[0])


def ridge_srcc(train: tuple[torch.Tensor, torch.Tensor],
               test: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Test SRCC of a ridge read-out fit on ``train``; each is (features, targets)."""
    return spearman(fit_ridge(*train).predict(test[0].double()), test[1].double())


@dataclass(frozen=True)
class QualityRow:
    """One quality probe: a target read from the inputs at one size."""

    target: str  # "fine quality", "coarse quality" or "mean score"
    size: int
    role: str
    srcc: float  # test SRCC of the read-out (0: nothing readable)
    train_images: int
    test_images: int


def quality_rows(features: dict[int, tuple[torch.Tensor, torch.Tensor]],
                 targets: dict[str, tuple[torch.Tensor, torch.Tensor]],
                 roles: dict[int, str]) -> list[QualityRow]:
    """A row per target and size. ``features[size]`` and ``targets[name]`` are (train, test)."""
    return [QualityRow(name, size, roles[size], ridge_srcc((train_x, train_y), (test_x, test_y)),
                       len(train_y), len(test_y))
            for name, (train_y, test_y) in targets.items()
            for size, (train_x, test_x) in features.items()]


def quality_gate_problems(rows: Sequence[QualityRow], *, max_model_srcc: float,
                          min_input_srcc: float, target: str = "fine quality") -> list[str]:
    """Why an IQA benchmark is invalid: its fine quality readable at the model size, or
    unreadable at a resizer's input size (empty when it is valid)."""
    problems = []
    for row in rows:
        if row.target != target:
            continue
        if row.role == MODEL_ROLE and row.srcc > max_model_srcc:
            problems.append(
                f"the {target} survives the default pipeline at {row.size} px: probe SRCC "
                f"{row.srcc:.2f} exceeds probe.max_model_srcc = {max_model_srcc} (by "
                f"{row.srcc - max_model_srcc:.2f}); a resizer would have nothing lost to "
                f"recover. Move synthetic.ava.detail_cycles further above the model size's "
                f"Nyquist")
        if row.role == INPUT_ROLE and row.srcc < min_input_srcc:
            problems.append(
                f"the {target} is not readable at the resizer's input size {row.size} px: "
                f"probe SRCC {row.srcc:.2f} is below probe.min_input_srcc = {min_input_srcc} "
                f"(by {min_input_srcc - row.srcc:.2f}); there is nothing for a resizer to "
                f"carry. Lower synthetic.ava.detail_cycles below the input size's Nyquist or "
                f"raise detail_amplitude")
    return problems
