"""The loader benchmark: deterministic image sets, ratios, and the bench-loaders stage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.bench.loaders import BenchConfig, add_ratios, write_image_set
from pipeline.cli import main
from pipeline.core.errors import ConfigError
from pipeline.report.bench_page import HEADERS, bench_page
from pipeline.report.bench_table import MACHINE, SUMMARY_COLUMNS
from tests.conftest import deep_merge

#: A benchmark small enough for a test: 8 images per set, tiny sizes, one timed pass.
TINY_BENCH = {"bench": {"images": 8, "batch_size": 4, "workers": 1, "repeats": 1,
                        "modes": ["train", "eval"], "sizes": {"synthetic": [16], "photo": [24]},
                        "photo": {"long_side": 80, "short_side": [50, 60], "jpeg_quality": 90}}}


@pytest.fixture
def bench_params(tiny_params):
    return deep_merge(tiny_params, TINY_BENCH)


@pytest.mark.parametrize("image_set", ["synthetic", "photo"])
def test_image_sets_are_deterministic(bench_params, tmp_path, image_set):
    cfg = BenchConfig.from_params(bench_params)
    first = write_image_set(image_set, cfg, tmp_path / "a")
    second = write_image_set(image_set, cfg, tmp_path / "b")
    assert len(first) == 8 and list(first["label"]) == [i % 4 for i in range(8)]
    for a, b in zip(first["path"], second["path"]):
        assert open(a, "rb").read() == open(b, "rb").read()
    if image_set == "photo":
        sides = np.sort(first[["width", "height"]].to_numpy(), axis=1)
        assert (sides[:, 1] == 80).all() and ((50 <= sides[:, 0]) & (sides[:, 0] <= 60)).all()


def test_photos_have_real_imagenet_formats(bench_params, tmp_path):
    """Each photo is stored as its manifest row says (chroma subsampling read back from the
    JPEG's header, ICC profile, grayscale), and over 400 photos the shares are params'
    (real ImageNet's), within 4 binomial standard errors."""
    from PIL import Image, JpegImagePlugin

    photo = {"subsampling": {"yuv444": 0.5, "yuv420": 0.3, "yuv422": 0.2}, "icc_share": 0.3,
             "grayscale_share": 0.1}
    params = deep_merge(bench_params, {"bench": {"images": 400, "photo": photo}})
    frame = write_image_set("photo", BenchConfig.from_params(params), tmp_path)
    sampling = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
    for row in frame.itertuples():
        with Image.open(row.path) as image:
            assert (image.mode == "L") == row.grayscale
            assert ("icc_profile" in image.info) == row.icc
            if not row.grayscale:
                assert sampling[JpegImagePlugin.get_sampling(image)] == row.subsampling
    colour = frame[~frame["grayscale"]]
    for observed, share in [((colour["subsampling"] == "4:4:4").mean(), 0.5),
                            ((colour["subsampling"] == "4:2:2").mean(), 0.2),
                            (frame["icc"].mean(), 0.3), (frame["grayscale"].mean(), 0.1)]:
        assert abs(observed - share) <= 4 * np.sqrt(share * (1 - share) / len(colour))


def test_photo_subsampling_shares_must_add_up(bench_params):
    bad = deep_merge(bench_params, {})
    bad["bench"]["photo"]["subsampling"] = {"yuv444": 0.7, "yuv420": 0.2}
    with pytest.raises(ConfigError, match="add up to 0.9"):
        BenchConfig.from_params(bad)


def test_photo_sides_are_checked(bench_params):
    bad = deep_merge(bench_params, {"bench": {"photo": {"short_side": [90, 60]}}})
    with pytest.raises(ConfigError, match="short_side"):
        BenchConfig.from_params(bad)


def test_ratios():
    frame = pd.DataFrame({
        "image_set": ["photo"] * 4, "size": pd.array([None, None, 224, 224], dtype="Int64"),
        "mode": ["decode", "decode", "eval", "eval"],
        "loader": ["decode-pil", "decode-torchvision", "torch", "dali-cpu"],
        "images_per_s": [400.0, 500.0, 300.0, 450.0], "cpu_ms_per_image": [2.5, 2.0, 6.0, 4.0]})
    ratios = add_ratios(frame)
    assert ratios["vs_torch"].tolist()[2:] == [1.0, 1.5]
    assert ratios["vs_2core_decode"].tolist()[2:] == [0.3, 0.45]  # 2 x the faster decoder
    assert ratios["cpu_vs_torch"].tolist()[2:] == [1.0, 1.5]
    assert ratios["cpu_vs_decode"].tolist()[2:] == [round(2 / 6, 3), 0.5]
    assert ratios[["vs_torch", "cpu_vs_decode"]].iloc[:2].isna().all().all()


def test_bench_loaders_stage(bench_params, tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(bench_params, sort_keys=False))
    out = tmp_path / "bench" / "loaders.csv"
    code = main(["bench-loaders", "--params", str(tmp_path / "params.yaml"), "--out", str(out),
                 "--work", str(tmp_path / "work")])
    assert code == 0
    frame = pd.read_csv(out)
    loaders = sorted(set(frame["loader"]) - {"decode-pil", "decode-torchvision", "normalize"})
    assert "torch" in loaders
    assert "decoded" in loaders
    assert set(loaders) <= {"torch", "decoded", "dali-hybrid", "dali-cpu", "dali-gpu"}
    # per set (one size each): two decoders + normalisation + modes x loaders
    assert len(frame) == 2 * (2 + 1 + 2 * len(loaders))
    normalizing = frame[frame["mode"] == "normalize"]
    assert (normalizing["cpu_ms_per_image"] > 0).all() and normalizing["vs_torch"].isna().all()
    measured = frame[~frame["mode"].isin(["decode", "normalize"])]
    assert (measured["images_per_s"] > 0).all() and (measured["cpu_ms_per_image"] > 0).all()
    assert (measured.loc[measured["loader"] == "torch", "vs_torch"] == 1.0).all()
    for column in ("cpus", "gpu", "torch", "torchvision", "dali", "pillow", "libjpeg_turbo"):
        assert frame[column].nunique() == 1, column
    assert (frame["load_1min"] >= 0).all()
    # the report's page of it (written by the tables stage): the compared columns, numbers
    # right-aligned, the machine named
    page = bench_page(frame)
    assert set(MACHINE) <= set(frame.columns)
    assert f"Machine: cpus {frame['cpus'][0]}, cpus_usable" in page
    assert page.count("<th>") == len(SUMMARY_COLUMNS) == len(HEADERS)
    assert "<th>CPU ms/img</th>" in page
    assert '<td class="num">16</td>' in page  # sizes are whole numbers, right-aligned


def test_bench_loaders_needs_its_section(tiny_params, tmp_path):
    params = {k: v for k, v in tiny_params.items() if k != "bench"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert main(["bench-loaders", "--params", str(tmp_path / "params.yaml"),
                 "--out", str(tmp_path / "x.csv")]) == 2


def test_bench_loop_stage(tiny_params, tmp_path):
    """The project's loop beside the bare one, per configured run and phase, on decoded
    images (written by the preresize stage) through the CLI entry point in this process."""
    from pipeline.data.imagenet import ImagenetConfig
    from tests.fixtures_data import make_imagenet_tree, run_in_process
    from tests.test_imagenet_data import prepared

    prepared(ImagenetConfig(make_imagenet_tree(tmp_path / "tree").root), tmp_path / "prepared")
    assert run_in_process(tmp_path / "p.yaml", tiny_params, "preresize", "--manifests",
                          str(tmp_path / "prepared"), "--out", str(tmp_path / "m")) == 0
    out = tmp_path / "loop.csv"
    assert run_in_process(tmp_path / "p.yaml", tiny_params, "bench-loop", "--manifests",
                          str(tmp_path / "m"), "--out", str(out)) == 0
    frame = pd.read_csv(out)
    runs = tiny_params["bench"]["loop"]["runs"]
    assert frame[["run", "phase"]].values.tolist() == [[r, p] for r in runs
                                                       for p in ("train", "eval")]
    assert (frame[["images_per_s", "bare_images_per_s", "vs_bare"]] > 0).all().all()
    # the ratio of the unrounded rates, which the rounded ones give to within their rounding
    assert ((frame["vs_bare"] - frame["images_per_s"] / frame["bare_images_per_s"]).abs()
            < 0.01).all()
    assert set(frame["loader"]) == {"decoded"} and (frame["threads"] ==
                                                    tiny_params["train"]["cpu_threads"]).all()


def test_bench_loop_names_only_configured_runs(tiny_params):
    from pipeline.params.runs import check_runs

    bad = deep_merge(tiny_params, {"bench": {"loop": {"runs": ["resnet_tiny/nope"]}}})
    assert any("bench.loop.runs names 'resnet_tiny/nope'" in p for p in check_runs(bad))
    assert not [p for p in check_runs(tiny_params) if "bench.loop" in p]
