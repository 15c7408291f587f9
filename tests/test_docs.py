"""The numbers the documentation quotes are the committed results' (a retrain that moves them
fails here until the text is updated)."""

from __future__ import annotations

import re

import pandas as pd

from pipeline.table_format import people
from tests.conftest import ROOT

RESULTS_README = ROOT / "results" / "README.md"


def quoted_rows(text: str) -> dict[tuple[str, str], list[str]]:
    """Rows of the Markdown tables in ``text`` by (backbone, mode), the mode's note dropped."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) >= 8:
            rows[(cells[0], re.sub(r" \(.*\)$", "", cells[1]))] = cells
    return rows


def same(quoted: str, computed: str) -> bool:
    """Equal up to bold and the typographic minus."""
    return quoted.replace("**", "").replace("−", "-") == computed.replace("**", "")


def test_results_readme_quotes_the_classification_table():
    shown = people(pd.read_csv(ROOT / "results" / "tables" / "classification.csv"),
                   "classification")
    quoted = quoted_rows(RESULTS_README.read_text())
    for _, row in shown.iterrows():
        cells = quoted[(row["backbone"], row["mode"])]
        for index, column in ((4, "top-1 err (%)"), (5, "vs default (± s.e.)"),
                              (6, "gap recovered"), (7, "health")):
            assert same(cells[index], row[column]), (row["mode"], column, cells[index],
                                                     row[column])


def test_results_readme_quotes_the_probes():
    text = RESULTS_README.read_text()
    probe = pd.read_csv(ROOT / "results" / "tables" / "probe.csv")
    fine = probe[probe["target"] == "fine cue"].set_index("size")["probe_error_pct"]
    assert f"**{fine.loc[32]:.1f}%** error | **{fine.loc[64]:.1f}%** error" in text
    resizers = pd.read_csv(ROOT / "results" / "tables" / "resizer_probe.csv")
    band = resizers[resizers["mode"] == "band_energy"]["probe_error_pct"].iloc[0]
    assert f"| band_energy | **{band:.1f}%** |" in text
