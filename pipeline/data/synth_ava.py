"""Embedded synthetic IQA set, written in AVA's on-disk layout.

Layout (as the real AVA): ``AVA.txt`` (row index, image id, ten vote counts for scores 1..10,
semantic tag 1, semantic tag 2 (0 = none), challenge id), ``images/<id>.jpg`` and the generic
split lists ``aesthetics_image_lists/generic_ls_train.jpgl`` / ``generic_test.jpgl``. Beside
them, ``degradations.csv`` records each image's generator truth (not part of AVA; prepare-ava
ignores it).

Why it is informative for the paper's question: the "human" ratings follow two factors, one
that every resolution shows and one that lives in fine detail. Each image is clean content (a
smooth gradient and hard-edged shapes, some with stripes or checks of 4 to 12 cycles per shorter
side) brought to one luminance contrast, then given a contrast factor c (``contrast``), then
isotropic fine detail in the band ``detail_cycles`` (cycles per shorter side) of std
``detail_amplitude * s``, then JPEG-compressed (quality drawn in ``jpeg_quality``, a nuisance).
With c and s from uniform draws u_c, u_s in [0, 1], the latent quality is
``q = (1 - fine_weight) u_c + fine_weight u_s``; the vote histogram is drawn (multinomial,
votes per image log-normal within ``votes``) from a Gaussian discretised over scores 1..10,
centred on ``3 + 4.5 q`` plus a small content-independent jitter. The band lies above the
Nyquist frequency of the default's 32 px input and below that of 64 px: a model at 32 px can
read the contrast half of q, one at 64 px all of it, and a learned resizer in front of a 32 px
model wins only by carrying the detail's evidence through. The probe-ava stage checks this on
the pipeline's own inputs.

Every image is a pure function of (seed, index); image ids and the split of the seed alone.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

log = logging.getLogger(__name__)

LIST_DIR = "aesthetics_image_lists"
SPLIT_LISTS = {"train": "generic_ls_train.jpgl", "test": "generic_test.jpgl"}
TRUTH_FILE = "degradations.csv"
#: Its columns: the factors as applied (contrast factor, detail std), the two factors and the
#: quality in [0, 1], and the score the raters' votes centre on.
TRUTH_COLUMNS = ("image_id", "split", "contrast", "detail_std", "coarse_quality",
                 "fine_quality", "quality", "centre")
SCORES = np.arange(1, 11)
MAX_ASPECT = 1.5
TAGS = 66  # AVA's semantic tags are 1..66
CHALLENGES = 1400
#: Luminance std of the clean content (before the contrast factor).
CONTENT_STD = 0.2


@dataclass(frozen=True)
class SynthAvaSpec:
    """What to generate; mirrors ``synthetic.ava`` in params.yaml."""

    train_images: int
    test_images: int
    min_side: int
    max_side: int
    votes: tuple[int, int]
    contrast: tuple[float, float]
    detail_cycles: tuple[float, float]
    detail_amplitude: float
    fine_weight: float
    jpeg_quality: tuple[int, int]
    tag0_fraction: float
    seed: int = 0


@dataclass(frozen=True)
class Degradation:
    """An image's two quality factors, each in [0, 1] (0: worst): ``contrast`` (global, seen
    at any size) and ``detail``, the strength of its fine detail."""

    contrast: float
    detail: float
    fine_weight: float

    @property
    def quality(self) -> float:
        return (1 - self.fine_weight) * self.contrast + self.fine_weight * self.detail


def image_size(rng: np.random.Generator, min_side: int, max_side: int) -> tuple[int, int]:
    """(height, width), both in [min_side, max_side], aspect ratio up to MAX_ASPECT."""
    long = int(rng.integers(min_side, max_side + 1))
    short = int(rng.integers(max(min_side, math.ceil(long / MAX_ASPECT)), long + 1))
    return (short, long) if rng.random() < 0.5 else (long, short)


def render_clean(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Clean content as float (height, width, 3): gradient and shapes, some with coarse stripes
    or checks (4 to 12 cycles per shorter side: seen at any size), at luminance mean 0.5 and
    std CONTENT_STD, so that the contrast factor alone sets an image's contrast."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    short = min(height, width)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (xx * math.cos(angle) + yy * math.sin(angle)) / max(height, width)
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9)
    c0, c1 = rng.uniform(0.2, 0.8, size=(2, 3))
    img = c0 + ramp[..., None] * (c1 - c0)
    for _ in range(int(rng.integers(3, 7))):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.12, 0.35, size=2) * short
        if rng.random() < 0.5:
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        else:
            inside = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
        colour = rng.uniform(0.1, 0.9, size=3)
        shade = np.ones_like(xx)
        if rng.random() < 0.7:
            period, theta = short / rng.uniform(4, 12), rng.uniform(0, math.pi)
            u = (xx * math.cos(theta) + yy * math.sin(theta)) * 2 * math.pi / period
            wave = np.sin(u)
            if rng.random() < 0.4:
                wave = wave * np.sin((-xx * math.sin(theta) + yy * math.cos(theta))
                                     * 2 * math.pi / period)
            shade = 1 + rng.uniform(0.2, 0.4) * wave
        img[inside] = (colour * shade[..., None])[inside]
    luma = img @ np.array([0.299, 0.587, 0.114])
    return 0.5 + (img - luma.mean()) * (CONTENT_STD / max(luma.std(), 1e-6))


def band_texture(rng: np.random.Generator, height: int, width: int,
                 cycles: tuple[float, float]) -> np.ndarray:
    """Isotropic random texture, (height, width), std 1, its energy in the ring of ``cycles``
    cycles per shorter side."""
    fy = np.fft.fftfreq(height).reshape(-1, 1)
    fx = np.fft.fftfreq(width).reshape(1, -1)
    radius = np.hypot(fy, fx) * min(height, width)
    ring = (radius >= cycles[0]) & (radius <= cycles[1])
    texture = np.fft.ifft2(np.fft.fft2(rng.normal(size=(height, width))) * ring).real
    return texture / max(texture.std(), 1e-12)


def draw_degradation(rng: np.random.Generator, fine_weight: float) -> Degradation:
    """Contrast and detail factors, each uniform in [0, 1]."""
    return Degradation(float(rng.uniform()), float(rng.uniform()), fine_weight)


def contrast_of(d: Degradation, spec: SynthAvaSpec) -> float:
    """The factor applied to the content's deviations from its mean."""
    low, high = spec.contrast
    return low + d.contrast * (high - low)


def degrade(clean: np.ndarray, d: Degradation, spec: SynthAvaSpec, rng: np.random.Generator
            ) -> bytes:
    """Contrast, then the fine detail at the detail factor's share of its amplitude, then
    JPEG at a quality drawn in ``jpeg_quality``: the file's bytes."""
    height, width, _ = clean.shape
    mean = clean.mean(axis=(0, 1))
    img = mean + contrast_of(d, spec) * (clean - mean)
    detail = band_texture(rng, height, width, spec.detail_cycles)
    img = np.clip(img + (d.detail * spec.detail_amplitude) * detail[..., None], 0, 1)
    worst, best = spec.jpeg_quality
    buf = io.BytesIO()
    Image.fromarray((img * 255 + 0.5).astype(np.uint8)).save(
        buf, format="JPEG", quality=int(rng.integers(worst, best + 1)))
    return buf.getvalue()


def score_centre(quality: float, rng: np.random.Generator) -> float:
    """Mean opinion the raters lean to: rises with the latent quality, small jitter."""
    return 3.0 + 4.5 * quality + float(rng.normal(0.0, 0.25))


def draw_votes(centre: float, rng: np.random.Generator, votes: tuple[int, int]) -> np.ndarray:
    """Ten vote counts: a multinomial over a Gaussian discretised on scores 1..10."""
    spread = rng.uniform(1.0, 1.6)
    p = np.exp(-0.5 * ((SCORES - centre) / spread) ** 2)
    lo, hi = votes
    median, sigma = math.sqrt(lo * hi), math.log(hi / lo) / 4.4 if hi > lo else 0.0
    count = int(np.clip(round(math.exp(rng.normal(math.log(median), sigma))), lo, hi))
    return rng.multinomial(count, p / p.sum())


def draw_tags(rng: np.random.Generator, tag0_fraction: float) -> tuple[int, int, int]:
    """(tag 1, tag 2, challenge); tag 2 is 0 (none) for about ``tag0_fraction`` of images."""
    tag1 = int(rng.integers(1, TAGS + 1))
    tag2 = 0 if rng.random() < tag0_fraction else int((tag1 - 1 + rng.integers(1, TAGS)) % TAGS + 1)
    return tag1, tag2, int(rng.integers(1, CHALLENGES + 1))


def image_ids(spec: SynthAvaSpec) -> tuple[np.ndarray, np.ndarray]:
    """Distinct AVA-like image ids and whether each is a test image (both by row)."""
    total = spec.train_images + spec.test_images
    rng = np.random.default_rng([spec.seed, 0xA5A])
    ids = rng.choice(np.arange(1, 1_000_000), size=total, replace=False)
    is_test = np.zeros(total, dtype=bool)
    is_test[rng.permutation(total)[: spec.test_images]] = True
    return ids, is_test


def generate(spec: SynthAvaSpec, out_dir: Path) -> dict[str, int]:
    """Write the whole set under ``out_dir``; returns image counts per split."""
    ids, is_test = image_ids(spec)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rows, truth = [], []
    for index, image_id in enumerate(tqdm(ids, desc="synth ava", unit="img", mininterval=2)):
        rng = np.random.default_rng([spec.seed, 0xA5A, int(index)])
        height, width = image_size(rng, spec.min_side, spec.max_side)
        d = draw_degradation(rng, spec.fine_weight)
        data = degrade(render_clean(rng, height, width), d, spec, rng)
        (out_dir / "images" / f"{image_id}.jpg").write_bytes(data)
        centre = score_centre(d.quality, rng)
        votes = draw_votes(centre, rng, spec.votes)
        tags = draw_tags(rng, spec.tag0_fraction)
        rows.append([index + 1, int(image_id), *map(int, votes), *tags])
        truth.append((int(image_id), "test" if is_test[index] else "train",
                      round(contrast_of(d, spec), 4),
                      round(d.detail * spec.detail_amplitude, 4), round(d.contrast, 4),
                      round(d.detail, 4), round(d.quality, 4), round(centre, 4)))
    (out_dir / "AVA.txt").write_text("".join(" ".join(map(str, r)) + "\n" for r in rows))
    (out_dir / LIST_DIR).mkdir(exist_ok=True)
    for split, name in SPLIT_LISTS.items():
        chosen = ids[is_test] if split == "test" else ids[~is_test]
        (out_dir / LIST_DIR / name).write_text("".join(f"{i}\n" for i in chosen))
    pd.DataFrame(truth, columns=list(TRUTH_COLUMNS)).to_csv(out_dir / TRUTH_FILE, index=False,
                                                          lineterminator="\n")
    counts = {"train": int((~is_test).sum()), "test": int(is_test.sum())}
    log.info("wrote %d train and %d test images", counts["train"], counts["test"])
    return counts
