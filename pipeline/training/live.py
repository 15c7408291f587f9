"""Per-epoch records while a run trains: one CSV per run that ``dvc plots show`` draws.

The file (``results/live/<task>/<backbone>/<mode>/seed<s>.csv``, one row per finished epoch,
the same columns as the run's ``history.csv``) is rewritten whole and atomically after every
epoch, so a running job's curves can be looked at, and a resumed run, which replays the epochs
its state holds, writes the same bytes as one that was never stopped. dvc.yaml's top-level
``plots:`` overlay these files, x = ``epoch``. It is not a DVC metrics file: the stage's final
metrics JSON is a run's one summary, written only when the run ends.

DVCLive is not used. Its ``Live()`` opens the DVC repository in every training process, creates
one (``dvc init``) in a Git repository without it, fails in a Git repository without commits,
and under ``dvc exp run`` git-adds whatever in its folder no stage declares; switching that
off needs a private method (``_init_dvc``). What it would write for us is this CSV.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.core.io import write_csv


class LiveLog:
    """Rewrite ``path`` after every epoch with the epoch records seen so far."""

    def __init__(self, path: Path):
        self.path = path
        self.records: list[dict[str, float]] = []

    def __call__(self, record: dict[str, float]) -> None:
        self.records.append(dict(record))
        write_csv(self.path, pd.DataFrame(self.records))
