"""Resizer-size table: every row against closed-form counts of the Fig. 3 architecture."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.models.cost import MACS_TOOL
from pipeline.report.resizer_params import COLUMNS, resizer_param_table, table_notes


def conv_weights_formula(r: int, n: int) -> int:
    """7x7 3->n, 1x1 n->n, 2r 3x3 n->n in the blocks, one 3x3 n->n fuse, 7x7 n->3."""
    return 49 * 3 * n + n * n + 2 * r * 9 * n * n + 9 * n * n + 49 * n * 3


def trainable_formula(r: int, n: int) -> int:
    """Kernel weights + biases of the 7x7 (n), 1x1 (n) and final 7x7 (3) + BN affine (2n each):
    one BN after the stem, two per block, one after the fuse conv."""
    return conv_weights_formula(r, n) + n + n + 3 + 2 * n * (1 + 2 * r + 1)


def macs_formula(r: int, n: int, size_in: int, size_out: int) -> int:
    """7x7 and 1x1 at the input size, all later convolutions at the output size."""
    return size_in**2 * (49 * 3 * n + n * n) + size_out**2 * ((2 * r + 1) * 9 * n * n + 49 * n * 3)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return resizer_param_table()


def test_shape_columns_and_order(table: pd.DataFrame) -> None:
    assert list(table.columns) == list(COLUMNS) == ["r", "n", "conv_weights", "trainable_params", "gmacs"]
    assert list(zip(table.n, table.r, strict=True)) == [(n, r) for n in (16, 32) for r in (1, 2, 3, 4)]


def test_paper_default_row(table: pd.DataFrame) -> None:
    row = table[(table.r == 1) & (table.n == 16)].iloc[0]
    assert row.trainable_params == 12_035
    assert row.conv_weights == 11_872


@pytest.mark.parametrize("n", [16, 32])
def test_each_extra_block_adds_two_3x3_convs(table: pd.DataFrame, n: int) -> None:
    weights = table[table.n == n].sort_values("r").conv_weights.tolist()
    assert [b - a for a, b in zip(weights, weights[1:])] == [2 * 9 * n * n] * 3


def test_all_rows_match_closed_forms(table: pd.DataFrame) -> None:
    for row in table.itertuples():
        assert row.conv_weights == conv_weights_formula(row.r, row.n), row
        assert row.trainable_params == trainable_formula(row.r, row.n), row
        assert row.gmacs == pytest.approx(macs_formula(row.r, row.n, 368, 224) / 1e9, rel=1e-12), row


def test_other_sizes_and_deduplicated_sorted_inputs() -> None:
    small = resizer_param_table(rs=(2, 1, 2), ns=(8,), input_size=20, output_size=12)
    assert small.r.tolist() == [1, 2]
    assert small.gmacs.tolist() == pytest.approx(
        [macs_formula(r, 8, 20, 12) / 1e9 for r in (1, 2)], rel=1e-12
    )


def test_notes_state_each_convention() -> None:
    notes = table_notes(368, 224)
    assert "kernel weights only" in notes
    assert "biases" in notes and "BatchNorm" in notes
    assert "368x368" in notes and "224x224" in notes
    assert MACS_TOOL in notes
