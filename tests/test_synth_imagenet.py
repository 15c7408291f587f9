"""The synthetic benchmark: ImageNet's layout, varied sizes, deterministic, cues as designed."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.data.synth_imagenet import (FINE_CUES, SynthSpec, band_noise, class_cues,
                                          file_name, fine_cue_of, frequency_grid, generate,
                                          image_size, sample, spec_from_params, wnid)

SPEC = SynthSpec(classes=8, train_per_class=3, val_per_class=2, min_side=80, max_side=96,
                 fine_cycles=(28.0, 32.0), fine_amplitude=(0.12, 0.2),
                 nuisance_cycles=(6.0, 20.0), nuisance_amplitude=(0.03, 0.12),
                 jpeg_quality=92, seed=7)


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


def test_classes_are_hue_group_times_fine_cue():
    cues = {class_cues(c, 16) for c in range(16)}
    assert len(cues) == 16
    assert {p for _, p in cues} == set(FINE_CUES)
    assert [fine_cue_of(c) for c in range(8)] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert fine_cue_of(torch.tensor([5, 6])).tolist() == [1, 2]


def test_spec_from_params_takes_lists():
    cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in SPEC.__dict__.items()
           if k != "seed"}
    assert spec_from_params(cfg, 7) == SPEC


def band_share(wave: np.ndarray, cycles: tuple[float, float], short: int) -> float:
    """Share of a wave's energy inside a band of cycles per shorter side."""
    radius, _ = frequency_grid(*wave.shape, short)
    power = np.abs(np.fft.fft2(wave)) ** 2
    inside = (radius >= cycles[0]) & (radius <= cycles[1])
    return float(power[inside].sum() / power.sum())


@pytest.mark.parametrize("angle", [None, 0.0, math.pi / 2])
def test_band_noise_fills_its_band_only(angle):
    wave = band_noise(np.random.default_rng(0), 90, 110, (28.0, 32.0), angle)
    assert abs(wave.std() - 1) < 1e-9 and abs(wave.mean()) < 1e-9
    assert band_share(wave, (28.0, 32.0), 90) > 0.999


@pytest.mark.parametrize("cue", FINE_CUES)
def test_fine_cues_survive_a_flip(cue):
    """Horizontal flips (train augmentation) must not turn one class into another: the
    orientation histogram of the fine texture stays the same."""
    if cue == "smooth":
        return
    from pipeline.data.synth_imagenet import fine_texture
    wave = fine_texture(cue, np.random.default_rng(1), 96, 96, SPEC)
    def orientation(w):
        _, theta = frequency_grid(96, 96, 96)
        power = np.abs(np.fft.fft2(w)) ** 2
        bins = np.round(theta / (math.pi / 4)).astype(int) % 4
        return np.array([power[bins == b].sum() for b in range(4)]) / power.sum()
    assert np.allclose(orientation(wave), orientation(wave[:, ::-1]), atol=0.05)


def resized_band_std(size: int, short: int = 88) -> float:
    """Std left of a fine-band texture after the eval pipeline's antialiased resize of the
    shorter side to size / 0.875."""
    wave = band_noise(np.random.default_rng(0), short, short, SPEC.fine_cycles)
    x = torch.tensor(wave, dtype=torch.float32)[None, None]
    target = round(size / 0.875)
    return float(F.interpolate(x, size=(target, target), mode="bilinear", antialias=True).std())


def test_fine_band_lost_at_32_and_kept_at_64():
    """The property that makes the benchmark decidable (see the module docstring); the
    probe stage checks it on the real pipeline's inputs."""
    for short in (80, 88, 96):
        kept, lost = resized_band_std(64, short), resized_band_std(32, short)
        assert kept > 0.5 and lost < 0.1 and kept > 6 * lost


def test_smooth_class_has_no_fine_energy():
    """The fine band of a smooth image is empty but for JPEG-free rendering noise: compare
    against a textured image of the same hue group."""
    def fine_share(label):
        img = sample(SPEC, "val", label, 0).astype(float).mean(axis=2)
        short = min(img.shape)
        return band_share(img - img.mean(), SPEC.fine_cycles, short)
    assert fine_share(1) > 5 * fine_share(0)


def test_image_size_bounds():
    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w = image_size(rng, 50, 60)
        assert 50 <= min(h, w) <= 60
