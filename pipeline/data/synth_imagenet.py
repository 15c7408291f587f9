"""Embedded synthetic classification benchmark, written in ImageNet's extracted layout.

It is built so that the paper's question is decidable on it: part of the class evidence lies
in a frequency band that the default pipeline (antialiased resize to the model size, 32 px)
removes, and that survives at the learned resizer's input size (64 px).

A class is a (hue group, fine cue) pair:

- the **hue group** of the object is a coarse cue: it survives any downscale;
- the **fine cue** is a band-limited luminance texture on the object: none (``smooth``), or
  noise whose frequencies lie in ``fine_cycles`` cycles per shorter side, oriented
  (``vertical``/``horizontal``: within 20 degrees of one axis) or ``isotropic``. The eval
  pipeline brings the shorter side to 73 px for a 64-px input (Nyquist: 36.5 cycles) and to
  37 px for 32 px (Nyquist: 18.5 cycles), so a band of 28 to 32 cycles is well inside the
  64-px image and far beyond the 32-px one, where the antialiasing filter keeps 2% to 8% of
  its amplitude (folded down, orientation kept).
- what remains of it at 32 px is masked by **nuisance texture**: band-limited noise of random
  orientation and strength in ``nuisance_cycles`` (6 to 14 cycles, visible at 32 px) on the
  whole image, unrelated to the class;
- the background is a smooth **1/f** colour field (natural images' spectrum, cut off below
  the nuisance band) and every pixel carries a little white noise.

All cues are invariant to a horizontal flip (vertical stays vertical), so the usual flip
augmentation keeps labels right. Whether the fine cue is really lost at the model size and
present at the input size is not taken on trust: the ``probe`` stage measures it on the
pipeline's own inputs and fails the DAG when it is not so (:mod:`pipeline.data.probe`).

Layout (as a user's extracted ImageNet): ``train/<wnid>/<wnid>_<i>.JPEG`` and
``val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG``. Images vary in size and aspect ratio.
Every image is a pure function of (seed, split, class, index).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

log = logging.getLogger(__name__)

#: Fine cues, in class order within a hue group; all flip-invariant.
FINE_CUES = ("smooth", "vertical", "horizontal", "isotropic")
#: Orientation (radians) of each oriented cue's wave vector: ``vertical`` stripes vary along x.
CUE_ANGLE = {"vertical": 0.0, "horizontal": math.pi / 2}
#: Half-width (radians) of an oriented band around its angle.
ORIENTED_HALF_WIDTH = math.radians(20)
SPLITS = ("train", "val")


@dataclass(frozen=True)
class SynthSpec:
    """What to generate; mirrors ``synthetic.imagenet`` in params.yaml. Frequencies are in
    cycles per shorter side; amplitudes are standard deviations on the 0..1 value scale."""

    classes: int
    train_per_class: int
    val_per_class: int
    min_side: int
    max_side: int
    fine_cycles: tuple[float, float]
    fine_amplitude: tuple[float, float]
    nuisance_cycles: tuple[float, float]
    nuisance_amplitude: tuple[float, float]
    jpeg_quality: int
    seed: int = 0


def spec_from_params(cfg: dict, seed: int) -> SynthSpec:
    """The spec of params.yaml's ``synthetic.imagenet`` (lists become tuples)."""
    return SynthSpec(seed=seed, **{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in cfg.items()})


def wnid(label: int) -> str:
    """A WordNet-style id (``n`` + 8 digits) that cannot clash with a real ImageNet synset."""
    return f"n{90_000_000 + label:08d}"


def hue_groups(classes: int) -> int:
    """Number of hue groups: classes / fine cues, rounded up."""
    return math.ceil(classes / len(FINE_CUES))


def class_cues(label: int, classes: int) -> tuple[float, str]:
    """(hue in [0, 1), fine cue) of a class: hue group x fine cue."""
    group, cue = divmod(label, len(FINE_CUES))
    return (group + 0.5) / hue_groups(classes), FINE_CUES[cue]


def fine_cue_of(label):
    """Index of a class's fine cue in :data:`FINE_CUES` (the probe's target); ``label`` may
    be an int or an integer tensor or array of labels."""
    return label % len(FINE_CUES)


def frequency_grid(height: int, width: int, short: int) -> tuple[np.ndarray, np.ndarray]:
    """(radius in cycles per shorter side, angle in [0, pi)) of every FFT bin."""
    fy = np.fft.fftfreq(height)[:, None] * short
    fx = np.fft.fftfreq(width)[None, :] * short
    return np.hypot(fy, fx), np.mod(np.arctan2(fy, fx), math.pi)


def band_noise(rng: np.random.Generator, height: int, width: int, cycles: tuple[float, float],
               angle: float | None = None) -> np.ndarray:
    """Zero-mean unit-std noise whose spectrum fills the band ``cycles`` (per shorter side);
    within ``ORIENTED_HALF_WIDTH`` of ``angle`` only, or at every angle when ``None``."""
    radius, theta = frequency_grid(height, width, min(height, width))
    mask = (radius >= cycles[0]) & (radius <= cycles[1])
    if angle is not None:
        offset = np.abs(np.mod(theta - angle + math.pi / 2, math.pi) - math.pi / 2)
        mask &= offset <= ORIENTED_HALF_WIDTH
    spectrum = np.fft.fft2(rng.standard_normal((height, width))) * mask
    wave = np.fft.ifft2(spectrum).real
    return wave / max(float(wave.std()), 1e-12)


def pink_field(rng: np.random.Generator, height: int, width: int, cutoff: float) -> np.ndarray:
    """Smooth colour field (height, width, 3) in about [0, 1]: 1/f amplitude spectrum (as in
    natural images) below ``cutoff`` cycles per shorter side, nothing above."""
    radius, _ = frequency_grid(height, width, min(height, width))
    gain = np.where((radius > 0) & (radius <= cutoff), 1.0 / np.maximum(radius, 1.0), 0.0)
    channels = []
    for _ in range(3):
        wave = np.fft.ifft2(np.fft.fft2(rng.standard_normal((height, width))) * gain).real
        channels.append(0.5 + 0.15 * wave / max(float(wave.std()), 1e-12))
    return np.stack(channels, axis=-1)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB, all in [0, 1]; returns (..., 3)."""
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(int) % 6
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    rgb = np.zeros(h.shape + (3,))
    for k, (r, g, b) in enumerate(choices):
        mask = i == k
        rgb[mask] = np.stack([r[mask], g[mask], b[mask]], axis=-1)
    return rgb


def soft_ellipse(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Object mask in [0, 1]: an ellipse with a 2-px ramp, so its edge adds little fine
    energy of its own."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    short = min(height, width)
    cy, cx = rng.uniform(0.4, 0.6) * height, rng.uniform(0.4, 0.6) * width
    ry, rx = rng.uniform(0.3, 0.42, size=2) * short
    dist = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)  # 1 on the edge
    return np.clip((1.0 - dist) * min(ry, rx) / 2.0 + 0.5, 0.0, 1.0)


def fine_texture(cue: str, rng: np.random.Generator, height: int, width: int,
                 spec: SynthSpec) -> np.ndarray:
    """The class's fine texture (zero for ``smooth``), scaled by a random amplitude."""
    if cue == "smooth":
        return np.zeros((height, width))
    angle = CUE_ANGLE.get(cue)  # None: isotropic
    wave = band_noise(rng, height, width, spec.fine_cycles, angle)
    return rng.uniform(*spec.fine_amplitude) * wave


def nuisance_texture(rng: np.random.Generator, height: int, width: int,
                     spec: SynthSpec) -> np.ndarray:
    """Class-independent luminance texture in ``nuisance_cycles``: an oriented component at
    a random angle plus an isotropic one, each of random strength."""
    oriented = band_noise(rng, height, width, spec.nuisance_cycles, rng.uniform(0, math.pi))
    isotropic = band_noise(rng, height, width, spec.nuisance_cycles)
    return (rng.uniform(*spec.nuisance_amplitude) * oriented
            + rng.uniform(*spec.nuisance_amplitude) * isotropic)


def render(label: int, spec: SynthSpec, height: int, width: int,
           rng: np.random.Generator) -> np.ndarray:
    """One image of class ``label`` as uint8 (height, width, 3)."""
    hue, cue = class_cues(label, spec.classes)
    img = pink_field(rng, height, width, cutoff=spec.nuisance_cycles[0])
    mask = soft_ellipse(rng, height, width)
    obj_hue = (hue + rng.uniform(-0.3, 0.3) / hue_groups(spec.classes)) % 1.0
    sat, val = rng.uniform(0.45, 0.8), rng.uniform(0.45, 0.65)
    value = val * (1.0 + mask * fine_texture(cue, rng, height, width, spec))
    obj = _hsv_to_rgb(np.full(mask.shape, obj_hue), np.full(mask.shape, sat),
                      np.clip(value, 0.0, 1.0))
    img = img * (1 - mask[..., None]) + obj * mask[..., None]
    img += nuisance_texture(rng, height, width, spec)[..., None]
    img += rng.normal(0.0, 0.01, size=img.shape)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def image_size(rng: np.random.Generator, min_side: int, max_side: int) -> tuple[int, int]:
    """(height, width): shorter side in [min_side, max_side], aspect ratio in [3/4, 4/3]."""
    short = int(rng.integers(min_side, max_side + 1))
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    long = max(short, int(round(short * max(aspect, 1 / aspect))))
    return (short, long) if rng.random() < 0.5 else (long, short)


def file_name(split: str, label: int, index: int, per_class: int) -> str:
    """ImageNet's file naming: per-class names in train, global val ids in val."""
    if split == "train":
        return f"{wnid(label)}_{index}.JPEG"
    return f"ILSVRC2012_val_{label * per_class + index + 1:08d}.JPEG"


def sample(spec: SynthSpec, split: str, label: int, index: int) -> np.ndarray:
    """The image (uint8 HxWx3) of one (split, class, index): a pure function of the spec."""
    rng = np.random.default_rng([spec.seed, SPLITS.index(split), label, index])
    height, width = image_size(rng, spec.min_side, spec.max_side)
    return render(label, spec, height, width, rng)


def generate(spec: SynthSpec, out_dir: Path) -> dict[str, int]:
    """Write the whole tree under ``out_dir``; returns image counts per split."""
    counts: dict[str, int] = {}
    for split in SPLITS:
        per_class = spec.train_per_class if split == "train" else spec.val_per_class
        jobs = [(c, i) for c in range(spec.classes) for i in range(per_class)]
        for label in range(spec.classes):
            (out_dir / split / wnid(label)).mkdir(parents=True, exist_ok=True)
        for label, index in tqdm(jobs, desc=f"synth {split}", unit="img", mininterval=2):
            path = out_dir / split / wnid(label) / file_name(split, label, index, per_class)
            Image.fromarray(sample(spec, split, label, index)).save(
                path, format="JPEG", quality=spec.jpeg_quality)
        counts[split] = len(jobs)
        log.info("wrote %d %s images", len(jobs), split)  # out_dir is the stage's scratch copy
    return counts
