"""Embedded synthetic IQA set, written in AVA's on-disk layout.

Layout (as the real AVA): ``AVA.txt`` (row index, image id, ten vote counts for scores 1..10,
semantic tag 1, semantic tag 2 (0 = none), challenge id), ``images/<id>.jpg`` and the generic
split lists ``aesthetics_image_lists/generic_ls_train.jpgl`` / ``generic_test.jpgl``. Beside
them, ``degradations.csv`` records each image's generator truth (not part of AVA; prepare-ava
ignores it).

Why it is informative for the paper's question: the "human" ratings follow degradations that
live in fine detail. Each image is clean content (a smooth gradient and hard-edged shapes, some
carrying stripes or checks with periods of 3 to 9 px) that is then, each with probability
``degrade_prob``, Gaussian-blurred (sigma up to ``max_blur_sigma`` px), given Gaussian noise
(std up to ``max_noise_std``) and JPEG-compressed (quality down to ``jpeg_quality[0]``). With
strengths d_blur, d_noise, d_jpeg in [0, 1], the latent quality is
``q = (1 - d_blur)(1 - d_noise)(1 - d_jpeg)``; the vote histogram is drawn (multinomial, votes
per image log-normal within ``votes``) from a Gaussian discretised over scores 1..10, centred on
``3 + 4.5 q`` plus a small content-independent jitter. Images are 96 to 192 px: an antialiased
bilinear/bicubic downscale to 32 px averages noise away, removes the textures blur would erase,
and makes 8x8 JPEG blocks sub-pixel, so little evidence of q is left; at 64 px much more remains.
A learned resizer in front of a 32 px model can only win by carrying that evidence through.

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
from PIL import Image, ImageFilter
from tqdm import tqdm

log = logging.getLogger(__name__)

LIST_DIR = "aesthetics_image_lists"
SPLIT_LISTS = {"train": "generic_ls_train.jpgl", "test": "generic_test.jpgl"}
TRUTH_FILE = "degradations.csv"
SCORES = np.arange(1, 11)
MAX_ASPECT = 1.5
TAGS = 66  # AVA's semantic tags are 1..66
CHALLENGES = 1400


@dataclass(frozen=True)
class SynthAvaSpec:
    """What to generate; mirrors ``synthetic.ava`` in params.yaml."""

    train_images: int
    test_images: int
    min_side: int
    max_side: int
    votes: tuple[int, int]
    max_blur_sigma: float
    max_noise_std: float
    jpeg_quality: tuple[int, int]
    degrade_prob: float
    tag0_fraction: float
    seed: int = 0


@dataclass(frozen=True)
class Degradation:
    """Strengths in [0, 1] (0: not applied) and the latent quality they give."""

    blur: float
    noise: float
    jpeg: float

    @property
    def quality(self) -> float:
        return (1 - self.blur) * (1 - self.noise) * (1 - self.jpeg)


def image_size(rng: np.random.Generator, min_side: int, max_side: int) -> tuple[int, int]:
    """(height, width), both in [min_side, max_side], aspect ratio up to MAX_ASPECT."""
    long = int(rng.integers(min_side, max_side + 1))
    short = int(rng.integers(max(min_side, math.ceil(long / MAX_ASPECT)), long + 1))
    return (short, long) if rng.random() < 0.5 else (long, short)


def render_clean(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Clean content as float (height, width, 3) in [0, 1]: gradient, shapes, fine textures."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (xx * math.cos(angle) + yy * math.sin(angle)) / max(height, width)
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9)
    c0, c1 = rng.uniform(0.2, 0.8, size=(2, 3))
    img = c0 + ramp[..., None] * (c1 - c0)
    for _ in range(int(rng.integers(3, 7))):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.12, 0.35, size=2) * min(height, width)
        if rng.random() < 0.5:
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        else:
            inside = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
        colour = rng.uniform(0.1, 0.9, size=3)
        shade = np.ones_like(xx)
        if rng.random() < 0.7:  # a fine texture: stripes or checks, period 3..9 px
            period, theta = rng.uniform(3, 9), rng.uniform(0, math.pi)
            u = (xx * math.cos(theta) + yy * math.sin(theta)) * 2 * math.pi / period
            wave = np.sin(u)
            if rng.random() < 0.4:
                wave = wave * np.sin((-xx * math.sin(theta) + yy * math.cos(theta))
                                     * 2 * math.pi / period)
            shade = 1 + rng.uniform(0.2, 0.4) * wave
        img[inside] = np.clip(colour * shade[..., None], 0, 1)[inside]
    return img


def draw_degradation(rng: np.random.Generator, prob: float) -> Degradation:
    """Each degradation applied with probability ``prob``, strength uniform in (0, 1]."""
    strengths = [float(rng.uniform(0.05, 1.0)) if rng.random() < prob else 0.0 for _ in range(3)]
    return Degradation(*strengths)


def jpeg_quality_of(d: Degradation, qualities: tuple[int, int]) -> int:
    """JPEG quality for strength ``d.jpeg`` between [worst, best]."""
    worst, best = qualities
    return int(round(best - d.jpeg * (best - worst)))


def degrade(clean: np.ndarray, d: Degradation, spec: SynthAvaSpec, rng: np.random.Generator
            ) -> bytes:
    """Blur, then noise, then JPEG: the file's bytes."""
    img = Image.fromarray((np.clip(clean, 0, 1) * 255 + 0.5).astype(np.uint8))
    if d.blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(radius=d.blur * spec.max_blur_sigma))
    if d.noise > 0:
        noisy = np.asarray(img, dtype=np.float64) / 255 + rng.normal(
            0.0, d.noise * spec.max_noise_std, size=clean.shape)
        img = Image.fromarray((np.clip(noisy, 0, 1) * 255 + 0.5).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=jpeg_quality_of(d, spec.jpeg_quality))
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
        d = draw_degradation(rng, spec.degrade_prob)
        data = degrade(render_clean(rng, height, width), d, spec, rng)
        (out_dir / "images" / f"{image_id}.jpg").write_bytes(data)
        centre = score_centre(d.quality, rng)
        votes = draw_votes(centre, rng, spec.votes)
        tags = draw_tags(rng, spec.tag0_fraction)
        rows.append([index + 1, int(image_id), *map(int, votes), *tags])
        truth.append((int(image_id), "test" if is_test[index] else "train",
                      round(d.blur * spec.max_blur_sigma, 4),
                      round(d.noise * spec.max_noise_std, 4), jpeg_quality_of(d, spec.jpeg_quality),
                      round(d.quality, 4), round(centre, 4)))
    (out_dir / "AVA.txt").write_text("".join(" ".join(map(str, r)) + "\n" for r in rows))
    (out_dir / LIST_DIR).mkdir(exist_ok=True)
    for split, name in SPLIT_LISTS.items():
        chosen = ids[is_test] if split == "test" else ids[~is_test]
        (out_dir / LIST_DIR / name).write_text("".join(f"{i}\n" for i in chosen))
    pd.DataFrame(truth, columns=["image_id", "split", "blur_sigma", "noise_std", "jpeg_quality",
                                 "quality", "centre"]).to_csv(out_dir / TRUTH_FILE, index=False,
                                                              lineterminator="\n")
    counts = {"train": int((~is_test).sum()), "test": int(is_test.sum())}
    log.info("wrote %d train and %d test images", counts["train"], counts["test"])
    return counts
