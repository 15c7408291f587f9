"""The synthetic benchmark: ImageNet's layout, varied sizes, deterministic, fine cue as designed."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.data.synth_imagenet import (PATTERNS, SynthSpec, class_cues, file_name, generate,
                                          image_size, pattern_wave, wnid)

SPEC = SynthSpec(classes=8, train_per_class=3, val_per_class=2, min_side=64, max_side=96,
                 cycles=(18.0, 30.0), jpeg_quality=92, seed=7)


def digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.JPEG"))}


def test_layout_is_imagenet_extracted(tmp_path):
    counts = generate(SPEC, tmp_path)
    assert counts == {"train": 24, "val": 16}
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == [wnid(c) for c in range(8)]
    assert (tmp_path / "train" / wnid(3) / f"{wnid(3)}_2.JPEG").is_file()
    assert (tmp_path / "val" / wnid(0) / "ILSVRC2012_val_00000001.JPEG").is_file()
    assert len(list((tmp_path / "val").rglob("*.JPEG"))) == 16
    assert file_name("val", 1, 0, per_class=2) == "ILSVRC2012_val_00000003.JPEG"


def test_deterministic_from_seed(tmp_path):
    generate(SPEC, tmp_path / "a")
    generate(SPEC, tmp_path / "b")
    generate(SynthSpec(**{**SPEC.__dict__, "seed": 8}), tmp_path / "c")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_sizes_and_aspect_ratios_vary(tmp_path):
    generate(SPEC, tmp_path)
    sizes = {Image.open(p).size for p in tmp_path.rglob("*.JPEG")}
    assert len(sizes) > 10
    for w, h in sizes:
        assert SPEC.min_side <= min(w, h) <= SPEC.max_side
        assert max(w, h) / min(w, h) <= 4 / 3 + 0.02


def test_classes_are_hue_group_times_pattern():
    cues = {class_cues(c, 16) for c in range(16)}
    assert len(cues) == 16
    assert {p for _, p in cues} == set(PATTERNS)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_patterns_survive_a_flip(pattern):
    """Horizontal flips (train augmentation) must not turn one class into another."""
    yy, xx = np.mgrid[0:64, 0:64].astype(float)
    wave = pattern_wave(pattern, yy, xx, 4.0, np.random.default_rng(0))
    flipped = wave[:, ::-1]
    spectrum = lambda w: np.abs(np.fft.fft2(w))  # noqa: E731
    # same set of frequencies (up to the small tilt): compare orientation energy histograms
    def orientation_energy(w):
        f = np.fft.fftshift(spectrum(w))
        ky, kx = np.mgrid[-32:32, -32:32]
        angle = (np.degrees(np.arctan2(ky, kx)) % 180).round(-1) % 180
        return {a: f[angle == a].sum() for a in (0, 50, 90, 140)}
    a, b = orientation_energy(wave), orientation_energy(flipped)
    total = sum(a.values())
    for key in a:
        assert abs(a[key] - b[key]) < 0.25 * total


def fine_energy(size: int, cycles: float) -> float:
    """Std of the pattern left after an antialiased bilinear resize of a 150 px image."""
    yy, xx = np.mgrid[0:150, 0:150].astype(float)
    wave = np.sin(2 * math.pi * xx / (150 / cycles))
    x = torch.tensor(wave, dtype=torch.float32)[None, None]
    small = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    return float(small.std())


def test_fine_cue_weakened_at_32_and_kept_at_64():
    """The property that makes the benchmark informative (see the module docstring)."""
    for cycles in SPEC.cycles:
        assert fine_energy(64, cycles) > 2 * fine_energy(32, cycles)
    assert fine_energy(32, 30) < 0.1 < fine_energy(64, 30)


def test_image_size_bounds():
    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w = image_size(rng, 50, 60)
        assert 50 <= min(h, w) <= 60
