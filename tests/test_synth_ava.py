"""The synthetic IQA set: AVA's exact layout, deterministic, ratings that follow a coarse factor
(contrast, seen at any size) and a fine one (detail lost at 32 px, kept at 64 px); the
synth-ava stage."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.stats import spearmanr

from pipeline.core.errors import ConfigError
from pipeline.data.ava import AvaConfig, parse_ava_txt, prepare, read_jpgl, vote_stats
from pipeline.data.synth_ava import (LIST_DIR, SPLIT_LISTS, TRUTH_COLUMNS, TRUTH_FILE, Degradation,
                                     SynthAvaSpec, degrade, generate, image_size, render_clean)
from pipeline.params.config import validate
from tests.conftest import deep_merge
from tests.fixtures_data import run_in_process

SPEC = SynthAvaSpec(train_images=40, test_images=12, min_side=96, max_side=192, votes=(78, 549),
                    contrast=(0.3, 1.0), detail_cycles=(32.0, 36.0), detail_amplitude=0.12,
                    fine_weight=0.5, jpeg_quality=(88, 95), tag0_fraction=0.25, seed=3)


@pytest.fixture(scope="module")
def small_params():
    import yaml

    from tests.conftest import ROOT

    return deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()),
                      {"synthetic": {"ava": {"train_images": 6, "test_images": 3}}})


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "ava"
    generate(SPEC, root)
    return root


def test_layout_is_avas(synthetic):
    table = parse_ava_txt(synthetic / "AVA.txt")  # 15 integer columns per line
    assert len(table) == 52 and table["row"].tolist() == list(range(1, 53))
    assert table["image_id"].is_unique
    assert (table["tag2"] == 0).sum() >= 3 and (table["tag2"] != table["tag1"]).all()
    votes = vote_stats(table[[f"v{k}" for k in range(1, 11)]].to_numpy())["votes"]
    assert votes.between(78, 549).all() and votes.std() > 20
    train, test = (read_jpgl(synthetic / LIST_DIR / SPLIT_LISTS[s]) for s in ("train", "test"))
    assert len(train) == 40 and len(test) == 12 and not set(train) & set(test)
    assert sorted(train + test) == sorted(table["image_id"])
    files = sorted(p.name for p in (synthetic / "images").iterdir())
    assert files == sorted(f"{i}.jpg" for i in table["image_id"])
    aspects = []
    for name in files[:20]:
        with Image.open(synthetic / "images" / name) as img:
            assert (img.format, img.mode) == ("JPEG", "RGB")
            assert 96 <= min(img.size) and max(img.size) <= 192
            aspects.append(max(img.size) / min(img.size))
    assert max(aspects) <= 1.5 and max(aspects) > 1.1  # varied aspect ratios


def test_prepares_cleanly_with_the_official_split(synthetic, tmp_path):
    result = prepare(AvaConfig(synthetic), tmp_path, tmp_path, workers=1, quality=95)
    assert result.summary["split"]["source"] == "official"
    assert {s: len(f) for s, f in result.manifests.items()} == {"train": 40, "test": 12}
    assert result.report.empty  # nothing dropped, converted or ignored


def test_deterministic_from_the_seed(synthetic, tmp_path):
    small = SynthAvaSpec(**{**SPEC.__dict__, "train_images": 40, "test_images": 12})
    generate(small, tmp_path / "again")
    for rel in ("AVA.txt", f"{LIST_DIR}/{SPLIT_LISTS['test']}", TRUTH_FILE):
        assert (tmp_path / "again" / rel).read_bytes() == (synthetic / rel).read_bytes()
    name = sorted((synthetic / "images").iterdir())[0].name
    assert (tmp_path / "again/images" / name).read_bytes() == \
        (synthetic / "images" / name).read_bytes()
    generate(SynthAvaSpec(**{**SPEC.__dict__, "seed": 4}), tmp_path / "other")
    assert (tmp_path / "other/AVA.txt").read_bytes() != (synthetic / "AVA.txt").read_bytes()


def test_ratings_follow_the_latent_quality(synthetic):
    table = parse_ava_txt(synthetic / "AVA.txt")
    stats = vote_stats(table[[f"v{k}" for k in range(1, 11)]].to_numpy())
    truth = pd.read_csv(synthetic / TRUTH_FILE)
    assert tuple(truth.columns) == TRUTH_COLUMNS
    truth = truth.set_index("image_id").loc[table["image_id"]]
    assert spearmanr(truth["quality"], stats["mean"])[0] > 0.8
    assert np.allclose(truth["quality"], (truth["coarse_quality"] + truth["fine_quality"]) / 2,
                       atol=1e-4)
    good = (truth["quality"] > truth["quality"].median()).to_numpy()
    assert stats["mean"][good].mean() > stats["mean"][~good].mean() + 1.0
    assert 2.0 < stats["mean"].min() and stats["mean"].max() < 9.0  # AVA-like range
    assert stats["std"].between(0.7, 2.5).all()


def _downscaled(img: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bicubic squash to size x size, as the IQA default's input."""
    return np.asarray(Image.fromarray(img).resize((size, size), Image.BICUBIC), dtype=np.float64)


def _decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def test_the_fine_factor_lives_above_32_px_and_the_coarse_one_everywhere():
    """Full detail against none on the same content: the difference, relative to the content,
    is several times weaker after a downscale to 32 px than after one to 64 px. Full contrast
    against low contrast: about as visible at both sizes."""
    fine, coarse = {32: [], 64: []}, {32: [], 64: []}
    for index in range(20):
        rng = np.random.default_rng([SPEC.seed, 0xA5A, index])
        height, width = image_size(rng, SPEC.min_side, SPEC.max_side)
        clean = render_clean(rng, height, width)
        state = rng.bit_generator.state

        def image(contrast: float, detail: float) -> np.ndarray:
            rng.bit_generator.state = state  # the same detail texture and JPEG quality
            return _decoded(degrade(clean, Degradation(contrast, detail, 0.5), SPEC, rng))

        sharp, flat, dull = image(1.0, 1.0), image(1.0, 0.0), image(0.0, 0.0)
        for size in fine:
            reference = _downscaled(flat, size)
            fine[size].append(((_downscaled(sharp, size) - reference) ** 2).mean()
                              / reference.var())
            coarse[size].append(((_downscaled(dull, size) - reference) ** 2).mean()
                                / reference.var())
    assert np.median(fine[64]) > 5 * np.median(fine[32]), (fine[32], fine[64])
    assert 10 * math.log10(1 / np.median(fine[64])) < 20  # visible at 64 px (SNR below 20 dB)
    assert 0.5 < np.median(coarse[32]) / np.median(coarse[64]) < 2


@pytest.mark.parametrize("edit, message", [
    ({"min_side": 200}, "synthetic.ava.min_side = 200 exceeds max_side = 192"),
    ({"contrast": [0.9, 0.2]}, "synthetic.ava.contrast = [0.9, 0.2]: the first value must not"),
    ({"detail_cycles": [16, 13]}, "synthetic.ava.detail_cycles = [16, 13]: the first value"),
])
def test_ranges_must_be_ordered(small_params, edit, message):
    """Checked once, with the rest of params.yaml, before any stage works."""
    bad = deep_merge(small_params, {"synthetic": {"ava": edit}})
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(bad)


def test_synth_ava_stage(small_params, tmp_path, capsys):
    """Through the CLI entry point in this process (a second interpreter costs ~12 s here)."""
    assert run_in_process(tmp_path / "p.yaml", small_params, "synth-ava", "--out",
                          str(tmp_path / "ava")) == 0
    root = tmp_path / "ava"
    assert sorted(p.name for p in root.iterdir()) == ["AVA.txt", LIST_DIR, TRUTH_FILE, "images"]
    assert len(parse_ava_txt(root / "AVA.txt")) == 9 == len(list((root / "images").iterdir()))
    assert len(read_jpgl(root / LIST_DIR / "generic_test.jpgl")) == 3
    assert "synthetic AVA: {'train': 6, 'test': 3}" in capsys.readouterr().err
