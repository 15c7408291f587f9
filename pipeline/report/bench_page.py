"""The loader benchmark as the report shows it: human headers, the machine, what the columns
mean. Imported by the tables stage only, so that rewording it never reruns the benchmark.
"""

from __future__ import annotations

import pandas as pd

from pipeline.report.bench_table import MACHINE, SUMMARY_COLUMNS
from pipeline.report.table_format import html_page, plain

#: Header in the report of each compared CSV column.
HEADERS = {"image_set": "images", "size": "px", "mode": "mode", "loader": "loader",
           "images_per_s": "images/s", "cpu_ms_per_image": "CPU ms/img",
           "vs_torch": "x torch (wall)", "vs_2core_decode": "share of floor (wall)",
           "cpu_vs_torch": "x torch (CPU)", "cpu_vs_decode": "share of floor (CPU)"}
#: What the columns mean (by their headers; the CSV's names in brackets).
NOTES = [
    "mode: train (random-resized crop + flip) or eval (resize + centre crop) passes of a fresh "
    "loader over every image; decode: one core decoding the same files (PIL and torchvision's "
    "libjpeg-turbo), the floor; normalize: one core normalising a uint8 batch into a reused "
    "float batch, per image (every loader's batches pay it in training, on the CPU).",
    "images/s (images_per_s): wall-clock rate of a whole pass (start-up included), the fastest "
    "of the interleaved passes; CPU ms/img (cpu_ms_per_image): CPU time of the process and its "
    "workers per image.",
    "x torch (vs_torch; CPU: cpu_vs_torch): the loader over the torchvision reference, by rate "
    "and by CPU per image; share of floor (wall: vs_2core_decode; CPU: cpu_vs_decode): the "
    "loader's rate over two cores' decode rate, and one core's decode CPU per image over the "
    "loader's (CPU time barely moves with the machine's load).",
]


def bench_page(frame: pd.DataFrame) -> str:
    """The benchmark's CSV as a self-contained HTML page: the compared columns (sizes as whole
    numbers), the machine, the notes."""
    shown = plain(frame[SUMMARY_COLUMNS].astype({"size": "Int64"}))
    return html_page("Loader benchmark", [("", shown.rename(columns=HEADERS))],
                     [f"Machine: {machine_of(frame)}.", *NOTES])


def machine_of(frame: pd.DataFrame) -> str:
    """The machine a benchmark CSV was measured on, in one line (from its first row)."""
    first = frame.iloc[0]
    return ", ".join(f"{key} {first[key]}" for key in MACHINE if key in frame)
