"""The tables say which differences are real: per-run standard errors, differences to the
default with their noise, the share of the gap recovered, and no comparison with a run that
did not train."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.report.pages import PAGES
from pipeline.report.table_format import html_table, markdown, page, people, plain
from pipeline.report.tables import by_regime, headline, main_table, regimes_table

MODES = {  # mode: (family, resizer, input, model, top1 per seed)
    "default": ("baseline", "bilinear", 32, 32, [70.0, 72.0]),
    "bilinear_hr": ("baseline", "bilinear", 64, 64, [30.0, 32.0]),
    "learned": ("learned", "learned", 64, 32, [50.0, 52.0]),
    "learned_equal": ("learned", "learned", 32, 32, [71.0, 70.0]),
}


def frame(health: dict[str, str] | None = None, images: int = 600) -> pd.DataFrame:
    rows = []
    for mode, (family, resizer, size, model, errs) in MODES.items():
        for seed, err in enumerate(errs):
            rows.append({"task": "classification", "backbone": "net", "mode": mode,
                         "family": family, "resizer": resizer, "input_size": size,
                         "model_size": model, "epochs": 12, "seed": seed, "top1_err": err,
                         "top5_err": 1.0, "test_images": images,
                         "health": (health or {}).get(mode, "ok"), "params": 1, "gmacs": 0.1})
    return pd.DataFrame(rows)


def row(table: pd.DataFrame, mode: str) -> pd.Series:
    return table[table["mode"] == mode].iloc[0]


def test_differences_with_noise_and_gap_recovered():
    table = main_table(frame(), "classification")
    learned, equal = row(table, "learned"), row(table, "learned_equal")
    assert learned["delta_vs_default"] == -20.0 and learned["delta_resolved"]
    assert not equal["delta_resolved"]  # -0.5 points: noise
    assert learned["gap_recovered"] == pytest.approx(0.5)  # (71 - 51) / (71 - 31)
    assert pd.isna(equal["gap_recovered"])  # it does not resize inside the model
    assert 1.5 < learned["top1_err_se"] < 2.5  # binomial, 600 images at 50%
    shown = people(table, "classification").set_index("mode")["vs default (± s.e.)"]
    assert shown["learned"].startswith("-20.0 ± ") and not shown["learned"].endswith("≈")
    assert shown["learned_equal"].endswith("≈")  # within noise
    assert "50%" in page("t", [("", people(table, "classification"))], [])
    table.loc[table["mode"] == "learned", "gap_recovered"] = -0.004  # a share that rounds to 0
    assert people(table, "classification").set_index("mode").loc["learned", "gap recovered"] \
        == "0%"  # never "-0%"


def test_a_warm_start_is_compared_with_its_equal_epoch_control():
    warm = pd.DataFrame([{"task": "classification", "backbone": "net", "mode": mode,
                          "family": "warm", "resizer": resizer, "input_size": 64,
                          "model_size": 32, "epochs": 36, "seed": seed, "top1_err": err,
                          "top5_err": 1.0, "test_images": 600, "health": "ok", "params": 1,
                          "gmacs": 0.1, "resizer_params": params}
                         for mode, resizer, params, errs in (
                             ("learned_warm", "learned", 12035, [40.0, 44.0]),
                             ("band_energy_continued", "band_energy", 0, [38.0, 39.0]))
                         for seed, err in enumerate(errs)])
    table = main_table(pd.concat([frame().assign(resizer_params=0), warm]), "classification")
    learned, control = row(table, "learned_warm"), row(table, "band_energy_continued")
    assert learned["delta_vs_control"] == pytest.approx(42.0 - 38.5)
    assert learned["delta_vs_control_se"] > 0 and not learned["delta_vs_control_resolved"]
    assert pd.isna(control["delta_vs_control"]) and pd.isna(row(table, "learned")[
        "delta_vs_control"])  # only a warm-started learned row has a control
    shown = people(table, "classification").set_index("mode")["vs control (± s.e.)"]
    assert shown["learned_warm"].startswith("+3.5 ± ") and shown["learned_warm"].endswith("≈")
    assert shown["learned"] == ""
    assert "vs control (± s.e.)" not in people(main_table(frame(), "classification"),
                                               "classification")  # no warm rows, no column


def test_no_comparison_against_a_run_that_did_not_train():
    table = main_table(frame(health={"default": "diverged"}), "classification")
    assert row(table, "default")["health"] == "diverged (seed 0, 1)"
    assert table["delta_vs_default"].isna().all() and table["gap_recovered"].isna().all()


def test_gap_within_noise_is_not_shared_out():
    MODES["bilinear_hr"] = ("baseline", "bilinear", 64, 64, [69.0, 71.0])
    try:
        table = main_table(frame(), "classification")
    finally:
        MODES["bilinear_hr"] = ("baseline", "bilinear", 64, 64, [30.0, 32.0])
    assert pd.isna(row(table, "learned")["gap_recovered"])


def test_headline_has_short_per_mode_columns_then_every_backbone():
    """summary.json: per mode the mean over backbones under ``<metric>.<mode>`` (what fits a
    terminal in `dvc exp show`), then each ``backbone/mode``; numbers only, gaps where defined."""
    runs = pd.concat([frame(), frame().assign(backbone="other", top1_err=frame()["top1_err"] + 4)])
    summary = headline({"classification": main_table(runs, "classification"),
                        "iqa": pd.DataFrame()})
    top1, gap = summary["top1"], summary["gap"]
    assert top1["net/learned"] == 51.0 and top1["other/learned"] == 55.0
    assert top1["learned"] == 53.0  # the mean over the two backbones
    assert list(top1)[:len(MODES)] == list(MODES)  # the short columns first
    assert set(gap) == {"learned", "net/learned", "other/learned"}
    assert gap["learned"] == pytest.approx(0.5) and "iqa_gap" not in summary
    assert all(isinstance(v, float) for part in summary.values() for v in part.values())


def test_the_classification_table_names_each_rows_regime():
    """Both regimes' runs in one table (column ``regime``, first), each row's noise and gap
    against its own regime's default and bilinear_hr; the Markdown has a part per regime and
    the headline a key per regime."""
    second = frame().assign(task="attenuated", top1_err=frame()["top1_err"] - 10)
    table = regimes_table(pd.concat([frame(), second], ignore_index=True))
    assert table.columns[0] == "regime" and "task" not in table.columns
    assert table["regime"].tolist() == ["removed"] * len(MODES) + ["attenuated"] * len(MODES)
    parts = by_regime(table)
    assert list(parts) == ["classification", "attenuated"]
    assert row(parts["attenuated"], "learned")["delta_vs_default"] == -20.0
    assert row(parts["attenuated"], "learned")["gap_recovered"] == pytest.approx(0.5)
    assert row(parts["attenuated"], "learned")["top1_err_mean"] == 41.0
    # a binomial standard error, as for any top-1 error (sqrt(0.41 * 0.59 / 600) = 2.0 points)
    assert row(parts["attenuated"], "learned")["top1_err_se"] == pytest.approx(2.0, abs=0.05)
    headings = [heading for heading, _ in PAGES["classification"].parts(table)]
    assert [h.split(" (")[0] for h in headings] == ["Regime: removed", "Regime: attenuated"]
    summary = headline({**parts, "iqa": pd.DataFrame()})
    assert summary["top1"]["learned"] == 51.0 and summary["top1_attenuated"]["learned"] == 41.0
    assert regimes_table(frame().iloc[:0]).empty


def test_side_tables_get_the_houses_headers_and_precision():
    from pipeline.report.table_format import worded

    shown = worded(pd.DataFrame({"probe_error_pct": [72.3333, 0.17], "share_of_chance": [0.96, 0.002],
                                 "train_images": [1800, 1800]}))
    assert list(shown.columns) == ["probe error (%)", "share of chance", "train images"]
    assert shown["probe error (%)"].tolist() == ["72.3", "0.2"]  # one decimal, as top-1 error
    assert shown["train images"].tolist() == ["1,800", "1,800"]


def test_numbers_align_right_in_markdown_and_html_alike():
    """One rule for both renderings: a known numeric header, or every non-empty cell a
    number (signs, separators, ± parts, bold); text columns stay left."""
    table = plain(pd.DataFrame({"loader": ["torch", "dali"], "images_per_s": [1234.5, 99.0],
                                "note": ["a", ""], "delta": ["**-1.5 ± 0.3**", ""]}))
    lines = markdown(table).splitlines()
    right_md = [cell.endswith(":") for cell in lines[1].strip("|").split("|")]
    html = html_table(table)
    right_html = ['class="num"' in cell for cell in html.splitlines()[2].split("</td>")[:-1]]
    assert right_md == right_html == [False, True, False, True]
