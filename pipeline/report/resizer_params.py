"""Pure core of the resizer-size table (paper's r x n ablation): parameters and MACs per (r, n).

The paper's table counts convolution kernel weights only ("in thousands"); this table gives that column
next to the full trainable-parameter count and the MACs, and ``table_notes`` states each convention so a
published table never leaves the reader guessing.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from pipeline.models.cost import MACS_TOOL, count_conv_weights, count_macs, count_trainable_params
from pipeline.models.resizer import LearnedResizer

__all__ = ["COLUMNS", "resizer_param_table", "table_notes"]

COLUMNS: tuple[str, ...] = ("r", "n", "conv_weights", "trainable_params", "gmacs")


def _row(r: int, n: int, input_size: int, output_size: int) -> dict[str, int | float]:
    """Counts for one resizer with ``r`` residual blocks and ``n`` filters."""
    resizer = LearnedResizer(output_size, n=n, r=r)
    return {
        "r": r,
        "n": n,
        "conv_weights": count_conv_weights(resizer),
        "trainable_params": count_trainable_params(resizer),
        "gmacs": count_macs(resizer, input_size) / 1e9,
    }


def resizer_param_table(
    rs: Iterable[int] = (1, 2, 3, 4),
    ns: Iterable[int] = (16, 32),
    input_size: int = 368,
    output_size: int = 224,
) -> pd.DataFrame:
    """One row per (r, n), sorted by n then r, with columns ``COLUMNS``.

    ``gmacs`` is the resizer alone (no backbone) for one ``input_size`` x ``input_size`` image resized to
    ``output_size`` x ``output_size``; see ``table_notes`` for the conventions.
    """
    rows = [_row(r, n, input_size, output_size) for n in sorted(set(ns)) for r in sorted(set(rs))]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def table_notes(input_size: int, output_size: int) -> str:
    """Plain-text notes stating what each column of ``resizer_param_table`` counts."""
    return "\n".join(
        [
            "r: residual blocks; n: filters per convolution.",
            "conv weights: convolution kernel weights only (no biases, no BatchNorm parameters); "
            'the convention of the paper\'s resizer table, which quotes it "in thousands".',
            "trainable params: every trainable parameter of the resizer: kernel weights, convolution "
            "biases and BatchNorm scale/shift.",
            f"gmacs: multiply-accumulates / 1e9 of the resizer alone (backbone not included) for one "
            f"{input_size}x{input_size} image resized to {output_size}x{output_size}, "
            f"counted with {MACS_TOOL}.",
        ]
    )
