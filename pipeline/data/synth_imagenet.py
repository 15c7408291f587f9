"""Embedded synthetic classification benchmark, written in ImageNet's extracted layout.

Why it is informative for the paper's question: each class is a (hue group, fine pattern)
pair. The hue of the object is a coarse cue that survives any downscale (hue groups overlap a
little, so it is not a perfect cue); the pattern (vertical stripes, horizontal stripes, an axis
plaid or a diagonal plaid) is a fine cue with a per-image number of periods across the shorter
side drawn from ``cycles`` = [lo, hi]. Brought to 64 px (eval: shorter side 73 px) a period is
2.4 to 4 px, visible; brought to 32 px it is 1.2 to 2 px, at or beyond Nyquist, and the
antialiasing filter of a bilinear downscale keeps 2% (30 periods) to 36% (18 periods) of its
amplitude. The default resizer therefore sees the fine cue in some images, weakly, and
bilinear at 64 px sees it in all. All four patterns are invariant to a horizontal flip, so the
usual flip augmentation keeps labels right.
So bilinear at 64 px can read both cues, the default bilinear at 32 px only the coarse one, and
a learned 64 -> 32 resizer can only win by carrying the fine cue through the bottleneck.

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

PATTERNS = ("vertical", "horizontal", "plaid", "diagonal_plaid")  # flip-invariant fine cues
SPLITS = ("train", "val")


@dataclass(frozen=True)
class SynthSpec:
    """What to generate; mirrors ``synthetic.imagenet`` in params.yaml."""

    classes: int
    train_per_class: int
    val_per_class: int
    min_side: int
    max_side: int
    cycles: tuple[float, float]
    jpeg_quality: int
    seed: int = 0


def wnid(label: int) -> str:
    """A WordNet-style id (``n`` + 8 digits) that cannot clash with a real ImageNet synset."""
    return f"n{90_000_000 + label:08d}"


def class_cues(label: int, classes: int) -> tuple[float, str]:
    """(hue in [0, 1), fine pattern) of a class: hue group x pattern."""
    groups = math.ceil(classes / len(PATTERNS))
    group, pattern = divmod(label, len(PATTERNS))
    return (group + 0.5) / groups, PATTERNS[pattern]


def pattern_wave(pattern: str, yy: np.ndarray, xx: np.ndarray, period: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Zero-mean fine pattern in about [-1, 1]; every component has the same period."""
    tilt = rng.uniform(-0.06, 0.06)
    angles = {"vertical": [0.0], "horizontal": [math.pi / 2],
              "plaid": [0.0, math.pi / 2], "diagonal_plaid": [math.pi / 4, 3 * math.pi / 4]}
    waves = [np.sin(2 * math.pi * (xx * math.cos(a + tilt) + yy * math.sin(a + tilt)) / period
                    + rng.uniform(0, 2 * math.pi)) for a in angles[pattern]]
    return sum(waves) / math.sqrt(len(waves))


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


def _smooth_field(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency random colour field (height, width, 3) in [0, 1]."""
    coarse = rng.uniform(0.15, 0.85, size=(cells, cells, 3))
    img = Image.fromarray((coarse * 255).astype(np.uint8)).resize((width, height), Image.BICUBIC)
    return np.asarray(img, dtype=np.float64) / 255.0


def render(label: int, classes: int, cycles: tuple[float, float], height: int, width: int,
           rng: np.random.Generator) -> np.ndarray:
    """One image of class ``label`` as uint8 (height, width, 3)."""
    hue, pattern = class_cues(label, classes)
    groups = math.ceil(classes / len(PATTERNS))
    img = _smooth_field(rng, height, width, cells=int(rng.integers(3, 6)))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    short = min(height, width)
    # Object: an ellipse of the class hue (jittered within its group) carrying the grating.
    cy, cx = rng.uniform(0.35, 0.65) * height, rng.uniform(0.35, 0.65) * width
    ry, rx = rng.uniform(0.28, 0.42, size=2) * short
    inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    obj_hue = (hue + rng.uniform(-0.6, 0.6) / groups) % 1.0  # neighbouring groups overlap
    sat, val = rng.uniform(0.45, 0.9), rng.uniform(0.45, 0.8)
    wave = pattern_wave(pattern, yy, xx, short / rng.uniform(*cycles), rng)
    amplitude = rng.uniform(0.18, 0.3)
    v_map = np.clip(val * (1.0 + amplitude * wave), 0, 1)
    obj = _hsv_to_rgb(np.full(inside.shape, obj_hue), np.full(inside.shape, sat), v_map)
    img[inside] = obj[inside]
    img += rng.normal(0.0, 0.02, size=img.shape)
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


def generate(spec: SynthSpec, out_dir: Path) -> dict[str, int]:
    """Write the whole tree under ``out_dir``; returns image counts per split."""
    counts: dict[str, int] = {}
    for split_id, split in enumerate(SPLITS):
        per_class = spec.train_per_class if split == "train" else spec.val_per_class
        jobs = [(c, i) for c in range(spec.classes) for i in range(per_class)]
        for label in range(spec.classes):
            (out_dir / split / wnid(label)).mkdir(parents=True, exist_ok=True)
        for label, index in tqdm(jobs, desc=f"synth {split}", unit="img", mininterval=2):
            rng = np.random.default_rng([spec.seed, split_id, label, index])
            height, width = image_size(rng, spec.min_side, spec.max_side)
            pixels = render(label, spec.classes, spec.cycles, height, width, rng)
            path = out_dir / split / wnid(label) / file_name(split, label, index, per_class)
            Image.fromarray(pixels).save(path, format="JPEG", quality=spec.jpeg_quality)
        counts[split] = len(jobs)
        log.info("wrote %d %s images to %s", len(jobs), split, out_dir / split)
    return counts
