"""Per-sample seeds (pipeline.loaders.seeds): NumPy's SeedSequence, one row or a batch."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.loaders.seeds import sample_seed, sample_seeds

#: Seeds of one to seven 32-bit words: with the row, up to and beyond SeedSequence's pool of 4
#: (past it, the extra words are mixed in afterwards), and the word boundaries.
SEEDS = [0, 1, 7, 2**31, 2**32 - 1, 2**32, 2**64 - 1, 2**64, 2**96 - 1, 2**96, 2**200 + 3,
         *np.random.default_rng(5).integers(0, 2**63, 6).tolist()]
ROWS = [0, 1, 2, 63, 64, 1799, 2**31, 2**32 - 1]


def numpy_seed(seed: int, row: int) -> int:
    """The definition: SeedSequence([seed, row]), its first 64-bit word, halved."""
    return int(np.random.SeedSequence([seed, row]).generate_state(1, dtype=np.uint64)[0] >> 1)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_batch_and_one_row_are_numpys_seed_sequence(seed):
    rows = np.array(ROWS + list(range(3, 40)))
    expected = [numpy_seed(seed, int(row)) for row in rows]
    assert sample_seeds(seed, rows).tolist() == expected
    assert sample_seeds(seed, rows.tolist()).dtype == np.int64
    assert [sample_seed(seed, int(row)) for row in rows] == expected


def test_no_rows_no_seeds():
    assert sample_seeds(3, []).shape == (0,)


@pytest.mark.parametrize("seed,rows", [(-1, [0]), (0, [-1]), (0, [2**32])])
def test_out_of_range_is_refused(seed, rows):
    with pytest.raises(ValueError, match="seed must be a non-negative|rows must lie"):
        sample_seeds(seed, rows)
    with pytest.raises(ValueError):
        sample_seed(seed, rows[0])
