"""One verdict per file, convertible files rewritten as upright RGB JPEGs, counts that add up."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image, ImageOps

from pipeline.data.checks import (ACTIONS, CONVERT, DROP, KEEP, CheckJob, check_image, examine,
                                  examine_all, split_summary)
from tests.fixtures_data import BROKEN, CONVERTED, image_bytes, loaded_size


@pytest.fixture
def files(tmp_path):
    """One file per kind, named .JPEG as in ImageNet."""
    paths = {}
    for seed, kind in enumerate(["good", *BROKEN]):
        path = tmp_path / f"{kind}.JPEG"
        path.write_bytes(image_bytes(kind, seed))
        paths[kind] = path
    return paths


@pytest.mark.parametrize("kind", ["good", *BROKEN])
def test_verdict_per_kind(files, kind):
    result = check_image(files[kind])
    expected = BROKEN.get(kind, "ok")
    assert result.verdict == expected, result
    assert result.action == ACTIONS[expected]
    assert result.action == (KEEP if kind == "good" else CONVERT if kind in CONVERTED else DROP)
    if result.action != DROP:  # decoded: the raw size is known
        assert (result.width, result.height) == (36, 28)


def test_missing_and_dangling_link(tmp_path):
    assert check_image(tmp_path / "absent.JPEG").verdict == "missing"
    link = tmp_path / "link.JPEG"
    os.symlink(tmp_path / "nowhere.JPEG", link)
    result = check_image(link)
    assert (result.verdict, result.action) == ("missing", DROP)


@pytest.mark.parametrize("kind", sorted(CONVERTED))
def test_conversion_gives_what_the_torch_loader_decodes(files, tmp_path, kind):
    dst = tmp_path / "out" / f"{kind}.JPEG"
    result = examine(CheckJob(str(files[kind]), str(dst), quality=95))
    assert result.action == CONVERT and dst.is_file()
    with Image.open(dst) as img:
        assert (img.format, img.mode) == ("JPEG", "RGB")
        assert img.getexif().get(0x0112, 1) == 1
        assert img.size == (result.width, result.height) == loaded_size(kind)
        converted = np.asarray(img, dtype=np.float64)
    with Image.open(files[kind]) as img:  # pipeline/loaders/torch_loader.py's read_rgb
        reference = np.asarray(ImageOps.exif_transpose(img).convert("RGB"), dtype=np.float64)
    assert converted.shape == reference.shape
    assert np.abs(converted - reference).mean() < 3.0  # JPEG re-encoding at quality 95
    assert check_image(dst).verdict == "ok"


def test_examine_without_destination_converts_nothing(files, tmp_path):
    result = examine(CheckJob(str(files["cmyk"]), None))
    assert (result.verdict, result.action) == ("cmyk", CONVERT)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files.values())


def test_pool_keeps_job_order_and_results(files, tmp_path):
    jobs = [CheckJob(str(p), str(tmp_path / "conv" / w / p.name)) for w in ("one", "two")
            for p in files.values()]
    alone = examine_all([CheckJob(j.path, j.convert_to.replace("/conv/", "/a/")) for j in jobs],
                        workers=1, desc="t")
    pooled = examine_all(jobs, workers=2, desc="t")
    assert [r.path for r in pooled] == [j.path for j in jobs]
    assert [(r.verdict, r.action, r.width, r.height) for r in pooled] == [
        (r.verdict, r.action, r.width, r.height) for r in alone]
    for job in jobs:
        if BROKEN.get(os.path.basename(job.path)[:-5]) in ("not_jpeg", "cmyk", "grayscale",
                                                            "exif_rotated"):
            assert os.path.isfile(job.convert_to)


def test_summary_counts_add_up(files):
    results = [check_image(p) for p in files.values()]
    summary = split_summary(results)
    assert summary["source"] == len(files) == summary["kept"] + summary["dropped"]
    assert summary["converted"] == len(CONVERTED)
    assert summary["dropped_by_reason"] == {"empty": 1, "truncated": 1, "undecodable": 1}
    assert sum(summary["by_verdict"].values()) == summary["source"]
