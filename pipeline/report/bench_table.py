"""What the loader benchmark's CSV holds: the machine's columns and the columns a reader
compares. Light on purpose: the benchmark stage and the tables stage (which renders the CSV for
the report, :mod:`pipeline.report.bench_page`) both import it, and nothing here times or formats.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import pandas as pd

#: The machine's description, constant columns of every row (:func:`pipeline.bench.loaders.machine`).
MACHINE = ("cpus", "cpus_usable", "cpu_model", "gpu", "torch", "torchvision", "dali", "pillow",
           "libjpeg_turbo", "python")
#: The columns a reader compares (the CSV also has timings, load and the machine).
SUMMARY_COLUMNS = ["image_set", "size", "mode", "loader", "images_per_s", "cpu_ms_per_image",
                   "vs_torch", "vs_2core_decode", "cpu_vs_torch", "cpu_vs_decode"]


def with_machine(frame: pd.DataFrame, info: dict[str, Any]) -> pd.DataFrame:
    """The table with the machine's description as constant columns (a plain valid CSV)."""
    return frame.assign(**info)


def summary(frame: pd.DataFrame) -> str:
    """A readable table of the measurements and ratios."""
    return frame[SUMMARY_COLUMNS].to_string(index=False, na_rep="")


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
