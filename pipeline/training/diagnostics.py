"""What a finished run did, beyond its score: did it train at all, and what does its resizer do?

- :func:`health`: ``ok``, ``diverged`` (the final train loss is not below the loss of a
  uniform guess) or ``at chance`` (the test metric is within two standard errors of chance).
  Tables mark such runs and never count a difference against them as a finding.
- :func:`residual_stats`: the size of a learned resizer's residual against its skip.
- :func:`high_band_transfer`: the share of the input's energy above the output's Nyquist
  frequency that changes the output, for the run's resizer and, for reference, for the
  antialiased and the plain bilinear resize of the same images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.core.noise import chance_error, correlation_se, error_se
from pipeline.loaders.transforms import normalize

OK, DIVERGED, AT_CHANCE = "ok", "diverged", "at chance"


def health(task: str, train_loss: float | None, metrics: Mapping[str, float], images: int,
           classes: int) -> str:
    """``ok``, ``diverged`` or ``at chance`` for a finished run (see the module doc).

    Classification: diverged when the final train loss is at least ln(classes), the
    cross-entropy of a uniform guess (label smoothing does not change it); at chance when
    top-1 error is within 2 standard errors of ``chance_error``. IQA: diverged when the loss
    is not finite; at chance when SRCC of the mean scores is within 2 standard errors of 0.
    A run that did not train (``train_loss`` None: published weights evaluated as they are)
    is judged by its test metric alone.
    """
    if train_loss is not None and not math.isfinite(train_loss):
        return DIVERGED
    if task == "classification":
        if train_loss is not None and train_loss >= math.log(classes):
            return DIVERGED
        chance = chance_error(classes)
        return AT_CHANCE if metrics["top1_err"] >= chance - 2 * error_se(chance, images) else OK
    return AT_CHANCE if metrics["srcc_mean"] < 2 * correlation_se(0.0, images) else OK


def _per_image(values: torch.Tensor, reduce: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """Median over images of ``reduce`` applied to each image's values."""
    return float(reduce(values.flatten(1)).median())


@torch.no_grad()
def residual_stats(resizer: nn.Module, images: torch.Tensor) -> dict[str, float]:
    """Median per-image peak and RMS of a learned resizer's residual, and the RMS of its
    skip's deviation from the image mean (the image's own scale), on normalised inputs."""
    skip, residual = resizer.skip_and_residual(images)
    centred = skip - skip.mean(dim=(1, 2, 3), keepdim=True)
    rms = lambda v: v.pow(2).mean(dim=1).sqrt()  # noqa: E731
    stats = {"residual_peak": _per_image(residual.abs(), lambda v: v.amax(dim=1)),
             "residual_rms": _per_image(residual, rms),
             "skip_rms": _per_image(centred, rms)}
    stats["residual_to_skip"] = stats["residual_rms"] / max(stats["skip_rms"], 1e-12)
    return stats


def low_pass(images: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Ideal low-pass: keep FFT bins with both |fy| and |fx| at most ``cutoff`` cycles/px."""
    height, width = images.shape[-2:]
    fy = torch.fft.fftfreq(height, device=images.device).abs().view(-1, 1)
    fx = torch.fft.fftfreq(width, device=images.device).abs().view(1, -1)
    keep = ((fy <= cutoff) & (fx <= cutoff)).to(images.dtype)
    return torch.fft.ifft2(torch.fft.fft2(images) * keep).real


@torch.no_grad()
def high_band_transfer(resize: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                       output_size: int) -> float:
    """Mean-square change of the output caused by the input's band above the output's
    Nyquist frequency, over that band's mean square in the input: 0 when the band is removed,
    about 1 when it reaches the output at full strength (folded or carried)."""
    height = images.shape[-2]
    smooth = low_pass(images.double(), 0.5 * output_size / height).to(images.dtype)
    band_energy = (images - smooth).double().pow(2).mean()
    change = (resize(images) - resize(smooth)).double().pow(2).mean()
    return float(change / band_energy.clamp(min=1e-12))


def reference_resizers(output_size: int) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The antialiased (the default pipeline's) and the plain bilinear resize."""
    def bilinear(antialias: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda x: F.interpolate(x, size=(output_size, output_size), mode="bilinear",
                                       align_corners=False, antialias=antialias)
    return {"bilinear_aa": bilinear(True), "bilinear_noaa": bilinear(False)}


@torch.no_grad()
def resizer_diagnostics(resizer: nn.Module, images: torch.Tensor,
                        output_size: int) -> dict[str, Any]:
    """Every diagnostic of a resizer that changes the resolution, on ``images`` (normalised,
    at its input size): high-band transfer (its own and the two references'), and the
    residual's size for a learned resizer."""
    resizer.eval()
    out: dict[str, Any] = {"hf_transfer": high_band_transfer(resizer, images, output_size)}
    for name, resize in reference_resizers(output_size).items():
        out[f"hf_transfer_{name}"] = high_band_transfer(resize, images, output_size)
    if hasattr(resizer, "skip_and_residual"):
        out.update(residual_stats(resizer, images))
    return {k: round(float(v), 6) for k, v in out.items()}


def first_images(loader: Any, limit: int) -> torch.Tensor:
    """Up to ``limit`` images from the first batches of ``loader`` (float, on the CPU)."""
    batches: Sequence[torch.Tensor] = []
    count = 0
    for images, _ in loader:
        if images.shape[0] == 0:
            continue
        batches.append(normalize(images).cpu())
        count += images.shape[0]
        if count >= limit:
            break
    return torch.cat(list(batches))[:limit]


def band_pass(images: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """The part of ``images`` whose FFT bins have max(|fy|, |fx|) in (low, high] cycles/px."""
    height, width = images.shape[-2:]
    fy = torch.fft.fftfreq(height, device=images.device).abs().view(-1, 1)
    fx = torch.fft.fftfreq(width, device=images.device).abs().view(1, -1)
    radius = torch.maximum(fy, fx)
    keep = ((radius > low) & (radius <= high)).to(images.dtype)
    return torch.fft.ifft2(torch.fft.fft2(images) * keep).real


@torch.no_grad()
def frequency_response(resize: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                       bands: int = 8) -> list[tuple[float, float]]:
    """(band centre in input cycles/px, response) for ``bands`` equal bands up to the input's
    Nyquist: the mean-square change of the output when the band is removed from the input,
    over the band's mean square. For a linear resizer it is its power response, for a learned
    one how strongly each band of the input drives its output."""
    images = images.double()
    edges = torch.linspace(0, 0.5, bands + 1).tolist()
    out = []
    for low, high in zip(edges[:-1], edges[1:]):
        band = band_pass(images, low, high)
        change = (resize(images.float()).double() - resize((images - band).float()).double())
        out.append(((low + high) / 2, float(change.pow(2).mean() / band.pow(2).mean()
                                            .clamp(min=1e-12))))
    return out
