"""The tables of results/tables/, one entry each: what the table is built from, its title, the
readable parts its Markdown page shows and its notes. The ``tables`` stage writes every entry
(CSV, Markdown, HTML) and the plan declares each to both engines (``pipeline.dag.plan.TABLES``),
so a new table is its builder, an entry here and its caption
(``workflow/report/table_<name>.rst``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.params.runs import REGIMES
from pipeline.report.table_format import ablation_grids, diagnostics_people, people
from pipeline.report.tables import (ABLATION_NOTES, CLASSIFICATION_NOTES, DIAGNOSTICS_NOTES,
                                    IQA_NOTES, REGIME_NOTES, TRANSFER_NOTES, ablation_table,
                                    by_regime, diagnostics_table, main_table, regimes_table,
                                    transfer_table)

Parts = list[tuple[str, pd.DataFrame]]


@dataclass(frozen=True)
class Page:
    """One table. ``build``: (every run's metrics, params) -> the table; ``parts``: the table ->
    its readable parts (a heading each, "" for none); ``notes``: params -> the notes under it;
    ``task``: the task whose rows :mod:`pipeline.report.compare` checks against the committed
    table by its primary metric (a table with a ``regime`` column: each row's regime's task;
    None: the table stacks tasks, compared per task, or is not compared: ``compared``)."""

    title: str
    build: Callable[[pd.DataFrame, Mapping[str, Any]], pd.DataFrame]
    parts: Callable[[pd.DataFrame], Parts]
    notes: Callable[[Mapping[str, Any]], Sequence[str]]
    task: str | None = None
    compared: bool = True


def by_task(table: pd.DataFrame) -> Parts:
    """(task, rows) of a table that stacks both tasks, in task order."""
    if table.empty:
        return []
    return [(task, rows.dropna(axis=1, how="all")) for task, rows in
            table.groupby("task", sort=False)]


def _main(task: str, title: str, notes: Sequence[str]) -> Page:
    return Page(title, lambda frame, _: main_table(frame, task),
                lambda table: [("", people(table, task))], lambda _: notes, task=task)


def regime_parts(table: pd.DataFrame) -> Parts:
    """(the regime's heading, its rows) of the classification table, per regime."""
    return [(f"Regime: {REGIMES[task]} ({REGIME_NOTES[REGIMES[task]]})", people(rows, task))
            for task, rows in by_regime(table).items()]


PAGES: dict[str, Page] = {
    "classification": Page("ImageNet-format classification",
                           lambda frame, _: regimes_table(frame), regime_parts,
                           lambda _: CLASSIFICATION_NOTES, task="classification"),
    "iqa": _main("iqa", "AVA-format image quality assessment (NIMA)", IQA_NOTES),
    "transfer": Page("Cross-baseline transfer of learned resizers",
                     lambda frame, params: transfer_table(frame, params["transfer"]),
                     lambda table: [(task, people(part, task)) for task, part in by_task(table)],
                     lambda _: TRANSFER_NOTES),
    "ablation": Page("Ablation: residual blocks r x filters n",
                     lambda frame, _: ablation_table(frame), ablation_grids,
                     lambda params: [*ABLATION_NOTES,
                                     f"Seeds of each cell: {params['ablation']['seeds']}."]),
    "diagnostics": Page("What the resizers do: residual size and the band above the model "
                        "size's Nyquist", lambda frame, _: diagnostics_table(frame),
                        lambda table: [("", diagnostics_people(table))] if not table.empty
                        else [], lambda _: DIAGNOSTICS_NOTES, compared=False),
}
