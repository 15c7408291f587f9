"""Figures: each plotting function writes a valid, deterministic PNG and rejects bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.report.figures import (RESIDUAL_FLOOR, Example, _palette, draw_chance,
                                     plot_ablation_heatmaps, plot_cost_curves, plot_example_grid,
                                     plot_frequency_response, plot_training_curves, residual_map)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def cost_table() -> pd.DataFrame:
    """Two backbones, a few modes; one run has a single seed (NaN std)."""
    return pd.DataFrame({
        "backbone": ["resnet50"] * 3 + ["densenet121"] * 2,
        "mode": ["default", "bilinear_hr", "learned", "default", "learned"],
        "gmacs": [4.1, 16.4, 5.3, 2.9, 3.8],
        "top1_err_mean": [24.0, 22.1, 21.5, 25.3, 23.9],
        "top1_err_std": [0.3, np.nan, 0.2, 0.4, 0.1],
    })


def ablation_table() -> pd.DataFrame:
    """Two (task, backbone) pairs over a 2x3 grid of (r, n), rows deliberately unsorted."""
    rows = [{"task": task, "backbone": backbone, "r": r, "n": n, "srcc_mean": 0.5 + 0.01 * r * n}
            for task, backbone in [("iqa", "resnet50"), ("classification", "resnet50")]
            for r in (32, 16) for n in (4, 1, 2)]
    return pd.DataFrame(rows)


def history_table() -> pd.DataFrame:
    """Two seeds of two modes for one (task, backbone), one mode elsewhere."""
    rng = np.random.default_rng(0)
    rows = [{"task": task, "backbone": "resnet50", "mode": mode, "seed": seed, "epoch": epoch,
             "train_loss": 2.0 / epoch + rng.uniform(0, 0.1),
             "val_loss": 2.2 / epoch + rng.uniform(0, 0.1)}
            for task, modes in [("classification", ["default", "learned"]), ("iqa", ["learned"])]
            for mode in modes for seed in (0, 1) for epoch in (1, 2, 3)]
    return pd.DataFrame(rows)


def examples() -> list[Example]:
    """Two rows with different input and model sizes."""
    rng = np.random.default_rng(1)
    out = []
    for backbone, big, small in [("resnet50", 24, 12), ("inception_v2", 20, 8)]:
        bilinear = rng.uniform(0, 1, (small, small, 3))
        out.append(Example(backbone=backbone, image=rng.uniform(0, 1, (big, big, 3)),
                           bilinear=bilinear,
                           learned=bilinear + rng.normal(0, 0.2, bilinear.shape)))
    return out


def response_table() -> pd.DataFrame:
    return pd.DataFrame([{"resizer": name, "frequency": f, "response": gain * (1 - 2 * f)}
                         for name, gain in (("a", 1.0), ("b", 0.3)) for f in (0.05, 0.2, 0.4)])


PLOTS: dict[str, Callable[[Path], None]] = {
    "cost": lambda p: plot_cost_curves(cost_table(), "top1_err", "top-1 error (%)", p),
    "grid": lambda p: plot_example_grid(examples(), p),
    "ablation": lambda p: plot_ablation_heatmaps(ablation_table(), "srcc", "SRCC", p),
    "training": lambda p: plot_training_curves(history_table(), p),
    "response": lambda p: plot_frequency_response(response_table(), 32, 64, p),
}


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_writes_deterministic_png(name, tmp_path):
    first, second = tmp_path / "a" / f"{name}.png", tmp_path / "b" / f"{name}.png"
    PLOTS[name](first)
    PLOTS[name](second)
    data = first.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    with Image.open(first) as image:
        image.load()
        width, height = image.size
    assert 200 <= width <= 4000 and 150 <= height <= 4000
    assert data == second.read_bytes()
    assert b"Software" not in data
    assert sorted(p.name for p in first.parent.iterdir()) == [f"{name}.png"]  # no temp left


def test_rerun_overwrites_in_place(tmp_path):
    path = tmp_path / "cost.png"
    path.write_bytes(b"stale")
    PLOTS["cost"](path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_a_mode_has_one_colour_in_every_figure():
    house = ["default", "bilinear_hr", "band_energy", "learned", "muller", "bicubic_hr"]
    classification = _palette(["default", "bilinear_hr", "band_energy", "learned", "muller"], house)
    iqa = _palette(["default", "bicubic_hr", "learned"], house)
    assert iqa["learned"] == classification["learned"] and iqa["default"] == classification["default"]
    assert len(set(classification.values()) | {iqa["bicubic_hr"]}) == 6  # no two alike
    # without the house order, colours follow each figure's own modes (the old behaviour)
    assert _palette(["default", "bicubic_hr", "learned"])["learned"] != classification["learned"]


def test_chance_line_where_the_metric_has_one(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    line = draw_chance(ax, 91.7)
    assert list(line.get_ydata()) == [91.7, 91.7] and line.get_linestyle() == "--"
    assert "chance" in [t.get_text() for t in ax.texts]
    assert draw_chance(ax, None) is None
    plt.close(fig)
    plot_cost_curves(cost_table(), "top1_err", "err", tmp_path / "a.png", chance=91.7)
    plot_cost_curves(cost_table(), "top1_err", "err", tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()


def test_different_data_gives_different_png(tmp_path):
    table = cost_table()
    plot_cost_curves(table, "top1_err", "top-1 error (%)", tmp_path / "a.png")
    table.loc[0, "top1_err_mean"] = 30.0
    plot_cost_curves(table, "top1_err", "top-1 error (%)", tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()


@pytest.mark.parametrize("call, frame, column", [
    (lambda t, p: plot_cost_curves(t, "top1_err", "err", p), cost_table, "gmacs"),
    (lambda t, p: plot_cost_curves(t, "top1_err", "err", p), cost_table, "top1_err_std"),
    (lambda t, p: plot_ablation_heatmaps(t, "srcc", "SRCC", p), ablation_table, "n"),
    (lambda t, p: plot_ablation_heatmaps(t, "srcc", "SRCC", p), ablation_table, "srcc_mean"),
    (lambda t, p: plot_training_curves(t, p), history_table, "val_loss"),
    (lambda t, p: plot_training_curves(t, p), history_table, "seed"),
])
def test_missing_column_is_named(call, frame, column, tmp_path):
    path = tmp_path / "out.png"
    with pytest.raises(ValueError, match=rf"missing column\(s\) \['{column}'\]"):
        call(frame().drop(columns=[column]), path)
    assert not path.exists()


def test_cost_curves_wrong_metric_names_its_columns(tmp_path):
    with pytest.raises(ValueError, match="srcc_mean.*srcc_std"):
        plot_cost_curves(cost_table(), "srcc", "SRCC", tmp_path / "out.png")


@pytest.mark.parametrize("call, frame", [
    (lambda t, p: plot_cost_curves(t, "top1_err", "err", p), cost_table),
    (lambda t, p: plot_ablation_heatmaps(t, "srcc", "SRCC", p), ablation_table),
    (lambda t, p: plot_training_curves(t, p), history_table),
])
def test_empty_table_is_rejected(call, frame, tmp_path):
    with pytest.raises(ValueError, match="empty"):
        call(frame().iloc[:0], tmp_path / "out.png")
    assert not (tmp_path / "out.png").exists()


def test_empty_example_list_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="no examples"):
        plot_example_grid([], tmp_path / "out.png")


def test_mismatched_example_shapes_name_the_example(tmp_path):
    good, bad = examples()
    bad = Example(bad.backbone, bad.image, bad.bilinear, np.zeros((9, 8, 3)))
    with pytest.raises(ValueError, match=r"example 1 \(inception_v2\).*\(8, 8, 3\).*\(9, 8, 3\)"):
        plot_example_grid([good, bad], tmp_path / "out.png")
    assert not (tmp_path / "out.png").exists()


def test_example_without_channels_is_rejected(tmp_path):
    (good, _) = examples()
    gray = Example(good.backbone, good.image[..., 0], good.bilinear, good.learned)
    with pytest.raises(ValueError, match=r"example 0 \(resnet50\): image has shape \(24, 24\)"):
        plot_example_grid([gray], tmp_path / "out.png")


def test_residual_map_is_channel_mean_with_symmetric_limit():
    bilinear = np.full((2, 3, 3), 0.5)
    learned = bilinear.copy()
    learned[..., 0] += 0.1
    learned[0, 0, 1] -= 0.4  # one pixel: (0.1 - 0.4) / 3 = -0.1, the largest magnitude
    residual, limit = residual_map(bilinear, learned)
    assert residual.shape == (2, 3)
    expected = np.full((2, 3), 0.1 / 3)
    expected[0, 0] = -0.1
    np.testing.assert_allclose(residual, expected, atol=1e-12)
    assert limit == pytest.approx(0.1)


def test_residual_map_uniform_shift():
    bilinear = np.zeros((4, 4, 3))
    learned = bilinear.copy()
    learned[..., 0] = 0.1
    residual, limit = residual_map(bilinear, learned)
    np.testing.assert_allclose(residual, np.full((4, 4), 0.1 / 3), atol=1e-12)
    assert limit == pytest.approx(0.1 / 3)


def test_residual_map_identical_inputs_guard_limit():
    image = np.random.default_rng(2).uniform(0, 1, (5, 4, 3))
    residual, limit = residual_map(image, image.copy())
    assert np.array_equal(residual, np.zeros((5, 4)))
    assert limit == RESIDUAL_FLOOR > 0


def test_residual_map_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(4, 4, 3\).*\(4, 5, 3\)"):
        residual_map(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


def test_error_bars_are_the_means_standard_error():
    """With the tables' noise columns: the larger of seed spread and per-run error over
    sqrt(seeds); without them, the spread."""
    from pipeline.report.figures import error_bars

    table = pd.DataFrame({"top1_err_std": [np.nan, 3.0, 1.0], "top1_err_se": [1.8, 2.0, 2.0],
                          "seeds": [1, 4, 4]})
    assert np.allclose(error_bars(table, "top1_err"), [1.8, 1.5, 1.0])
    assert np.allclose(error_bars(table.drop(columns="top1_err_se"), "top1_err"),
                       [np.nan, 3.0, 1.0], equal_nan=True)


def test_points_of_equal_cost_are_spread_symmetrically():
    from pipeline.report.figures import dodge

    x = pd.Series([1.0, 2.0, 1.0, 1.0, 3.0])
    shift = dodge(x)
    assert shift[1] == shift[4] == 0 and shift[[0, 2, 3]].sum() == pytest.approx(0)
    assert len(set(shift[[0, 2, 3]])) == 3  # three different places


def test_rows_of_one_backbone_share_a_residual_scale():
    from pipeline.report.figures import _residual_limits

    a, b = examples()
    big = Example(a.backbone, a.image, a.bilinear, a.bilinear + 0.9)
    limits = _residual_limits([a, big, b])
    assert limits[a.backbone] == pytest.approx(0.9)
    assert limits[b.backbone] == residual_map(b.bilinear, b.learned)[1]


def test_examples_compare_with_the_tasks_default_resize(params):
    from pipeline.report.examples import default_resizer

    assert default_resizer(params, "classification") == "bilinear"
    assert default_resizer(params, "iqa") == "bicubic"
