"""Result tables in Markdown, for people: the paper's layout, human headers with units, one
precision rule, the best value per backbone in bold, the noise beside every number.

The CSV beside each Markdown table keeps every column, at full precision, under its machine
name; this module only decides what a reader sees. The precision rule: a number is shown to
the precision its noise allows (errors in % to 0.1; correlations, accuracies and EMD to 0.001;
costs to three significant digits), and a spread, standard error or difference to the same
decimals as the value it qualifies. Conventions shared by every table are written once, in
``results/tables/README.md`` (:func:`conventions`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from tabulate import tabulate

from pipeline.params.runs import PRIMARY_METRIC, TASK_KIND, TASK_METRICS


@dataclass(frozen=True)
class Metric:
    """How a metric is shown: header (with unit), decimals, and which way is better."""

    header: str
    decimals: int
    lower_is_better: bool


METRICS = {"top1_err": Metric("top-1 err (%)", 1, True),
           "top5_err": Metric("top-5 err (%)", 1, True),
           "srcc_mean": Metric("SRCC mean", 3, False), "plcc_mean": Metric("PLCC mean", 3, False),
           "srcc_std": Metric("SRCC std", 3, False), "plcc_std": Metric("PLCC std", 3, False),
           "accuracy": Metric("accuracy", 3, False), "emd": Metric("EMD", 3, True)}
#: The metrics each kind of task's tables show (the CSV has them all).
SHOWN = {"classification": ("top1_err",), "iqa": ("srcc_mean", "plcc_mean", "accuracy", "emd")}
#: Diagnostics columns: header (three significant digits each).
DIAGNOSTICS = {"hf_transfer": "high-band transfer",
               "hf_transfer_bilinear_aa": "… bilinear (antialiased)",
               "hf_transfer_bilinear_noaa": "… bilinear (plain)",
               "residual_rms": "residual RMS", "residual_peak": "residual peak",
               "skip_rms": "skip RMS", "residual_to_skip": "residual / skip"}
#: A cell that is a number (with sign, separators, %, ± part or bold).
NUMBER = re.compile(r"[*]*[+-−]?[\d,]+(\.\d+)?(e[+-]\d+)?%?( ± [\d.]+)?[*]*( ≈)?( \(± [\d.]+\))?")
NUMERIC = {"px (in → model)", "epochs", "s.e.", "vs default (± s.e.)", "gap recovered",
           "params (M)", "GMACs", *(m.header for m in METRICS.values()), *DIAGNOSTICS.values()}


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    """``frame[name]``, or missing values where the table has no such column."""
    return frame[name] if name in frame else pd.Series(float("nan"), index=frame.index)


def number(value: float, decimals: int) -> str:
    """``value`` to ``decimals`` places (empty for a missing value)."""
    return "" if pd.isna(value) else f"{value:.{decimals}f}"


def value_cell(mean: float, std: float, decimals: int, best: bool) -> str:
    """``mean`` (``mean ± std`` over several seeds), bold when it is the backbone's best."""
    if pd.isna(mean):
        return ""
    text = number(mean, decimals) + ("" if pd.isna(std) else f" ± {number(std, decimals)}")
    return f"**{text}**" if best else text


def delta_cell(delta: float, se: float, resolved: object, decimals: int) -> str:
    """``+1.7 ± 2.5``, with ``≈`` when within two standard errors (empty: no comparison)."""
    if pd.isna(delta):
        return ""
    clear = not pd.isna(resolved) and bool(resolved)
    return f"{delta:+.{decimals}f} ± {se:.{decimals}f}" + ("" if clear else " ≈")


def best_rows(frame: pd.DataFrame, metric: str, groups: Sequence[str]) -> pd.Series:
    """Per group (e.g. backbone), the healthy rows whose mean of ``metric`` is the best."""
    column = f"{metric}_mean"
    healthy = frame["health"].eq("ok") if "health" in frame else pd.Series(True, frame.index)
    values = frame[column].where(healthy)
    keys = [frame[g] for g in groups if g in frame]
    if METRICS[metric].lower_is_better:
        target = values.groupby(keys).transform("min") if keys else values.min()
    else:
        target = values.groupby(keys).transform("max") if keys else values.max()
    return healthy & values.eq(target)


def sizes(frame: pd.DataFrame) -> list[str]:
    """``input → model`` pixel sizes per row."""
    return [f"{i} → {m}" if i != m else f"{i}" for i, m in
            zip(frame["input_size"], frame["model_size"])]


#: Columns (difference, its s.e., resolved) of a row against its backbone's default, its own
#: learned resizer (transfer) and its equal-epoch control (warm start), and their headers.
DEFAULT_DELTA = ("delta_vs_default", "delta_se", "delta_resolved")
OWN_DELTA = ("delta_vs_own", "delta_vs_own_se", "delta_vs_own_resolved")
CONTROL_DELTA = ("delta_vs_control", "delta_vs_control_se", "delta_vs_control_resolved")
DELTA_HEADERS = {DEFAULT_DELTA: "vs default (± s.e.)", OWN_DELTA: "vs own learned (± s.e.)",
                 CONTROL_DELTA: "vs control (± s.e.)"}


def people(frame: pd.DataFrame, task: str, groups: Sequence[str] = ("backbone",)) -> pd.DataFrame:
    """A main, transfer or ablation table as the strings a reader sees."""
    primary = PRIMARY_METRIC[task]
    decimals = METRICS[primary].decimals
    out = pd.DataFrame(index=frame.index)
    for key, header in (("backbone", "backbone"), ("mode", "mode"),
                        ("resizer_from", "resizer trained with"), ("r", "r"), ("n", "n")):
        if key in frame:
            out[header] = frame[key]
    out["px (in → model)"] = sizes(frame)
    out["epochs"] = frame["epochs"]
    for metric in SHOWN[TASK_KIND[task]]:
        if f"{metric}_mean" not in frame:
            continue
        best = best_rows(frame, metric, groups) if metric == primary else None
        info = METRICS[metric]
        out[info.header] = [value_cell(m, s, info.decimals, bool(best[i]) if best is not None
                                       else False)
                            for i, m, s in zip(frame.index, frame[f"{metric}_mean"],
                                               column(frame, f"{metric}_std"))]
    if f"{primary}_se" in frame:
        out["s.e."] = [number(se, decimals) for se in frame[f"{primary}_se"]]
    for columns, header in DELTA_HEADERS.items():
        if columns[0] in frame:
            out[header] = [delta_cell(d, s, ok, decimals)
                           for d, s, ok in zip(*(frame[c] for c in columns))]
    if "gap_recovered" in frame:
        out["gap recovered"] = ["" if pd.isna(g) else f"{int(round(100 * g))}%"
                                for g in frame["gap_recovered"]]
    if "health" in frame:
        out["health"] = frame["health"]
    out["params (M)"] = [number(p / 1e6, 3) for p in frame["params"]]
    out["GMACs"] = [sig3(g) for g in frame["gmacs"]]
    return out.loc[:, (out != "").any()]


def diagnostics_people(frame: pd.DataFrame) -> pd.DataFrame:
    """The diagnostics table as the strings a reader sees (three significant digits)."""
    out = frame[["task", "backbone", "mode"]].copy()
    out["px (in → model)"] = sizes(frame)
    for column, header in DIAGNOSTICS.items():
        if column in frame:
            out[header] = ["" if pd.isna(v) else sig3(v) for v in frame[column]]
    return out.loc[:, (out != "").any()]


def ablation_grids(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Per task and backbone, the r x n grid of the primary metric (rows r, columns n), each
    cell ``value (± s.e.)``, the grid's best in bold."""
    grids: list[tuple[str, pd.DataFrame]] = []
    if frame.empty:
        return grids
    for (task, backbone), cells in frame.groupby(["task", "backbone"], sort=False):
        metric = PRIMARY_METRIC[task]
        info = METRICS[metric]
        best = best_rows(cells, metric, ())
        text = [value_cell(m, s, info.decimals, bool(b)) + f" (± {number(se, info.decimals)})"
                for m, s, b, se in zip(cells[f"{metric}_mean"], column(cells, f"{metric}_std"),
                                       best, column(cells, f"{metric}_se"))]
        grid = cells.assign(cell=text).pivot(index="r", columns="n", values="cell")
        grid.columns = [f"n = {n}" for n in grid.columns]
        grid.index = [f"r = {r}" for r in grid.index]
        grids.append((f"{task}, {backbone}: {info.header}", grid.reset_index(names="")))
    return grids


def numeric(table: pd.DataFrame, name: str) -> bool:
    """Whether column ``name`` holds numbers (right-aligned in Markdown and HTML alike): a known
    numeric header, an ablation column, or every non-empty cell a number."""
    if name in NUMERIC or name.startswith("n = "):
        return True
    cells = [str(v) for v in table[name] if str(v)]
    return bool(cells) and all(NUMBER.fullmatch(cell) for cell in cells)


def markdown(table: pd.DataFrame) -> str:
    """A pipe table, numbers right-aligned, nothing re-parsed as a number."""
    if table.empty:
        return "(no runs configured)"
    align = ["right" if numeric(table, c) else "left" for c in table.columns]
    return tabulate(table.astype(str).to_dict("records"), headers="keys", tablefmt="pipe",
                    disable_numparse=True, colalign=align)


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Any table as strings by the precision rule: counts in full with thousands separators,
    other numbers to three significant digits, missing values empty."""
    out = pd.DataFrame(index=frame.index)
    for name, values in frame.items():
        if pd.api.types.is_integer_dtype(values):
            out[name] = ["" if pd.isna(v) else f"{v:,}" for v in values]
        elif pd.api.types.is_float_dtype(values):
            out[name] = ["" if pd.isna(v) else sig3(v) for v in values]
        else:
            out[name] = ["" if pd.isna(v) else str(v) for v in values]
    return out


def header(name: str) -> str:
    """A CSV column's name as a reader's header: words, a percentage's unit in brackets
    (``probe_error_pct`` -> ``probe error (%)``)."""
    words = name.removesuffix("_pct").replace("_", " ")
    return f"{words} (%)" if name.endswith("_pct") else words


def worded(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`plain` with the house's headers (:func:`header`) and percentages to one decimal,
    as the main tables show them."""
    out = plain(frame)
    for name in [n for n in frame.columns if n.endswith("_pct")]:
        out[name] = ["" if pd.isna(v) else f"{v:.1f}" for v in frame[name]]
    return out.rename(columns=header)


def sig3(value: float) -> str:
    """Three significant digits with trailing zeros kept; numbers from 100 up as whole numbers
    with thousands separators; exponent form only below 1e-4."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) < 1e-4:
        return f"{value:.2e}"
    text = f"{value:#.3g}"
    return text[:-1] if text.endswith(".") else text


def page(title: str, parts: Sequence[tuple[str, pd.DataFrame]], notes: Sequence[str],
         shared: bool = True) -> str:
    """A Markdown page: title, one table per part (under its own heading when several), notes,
    and (``shared``) the pointer to the conventions every result table shares."""
    lines = [f"# {title}", ""]
    if not parts:
        lines += ["(no runs configured)", ""]
    for heading, table in parts:
        if heading:
            lines += [f"## {heading}", ""]
        lines += [markdown(table), ""]
    lines += [f"- {line.strip()}" for note in notes for line in note.splitlines() if line.strip()]
    if shared:
        lines.append("- Conventions shared by every table (noise, health, sizes, epochs, cost): "
                     "[README.md](README.md).")
    return "\n".join(lines) + "\n"


def html_table(table: pd.DataFrame) -> str:
    """One HTML table of strings, numbers right-aligned, ``**bold**`` as bold."""
    right = {c for c in table.columns if numeric(table, c)}

    def cell(tag: str, text: str, column: str) -> str:
        body = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))
        attribute = ' class="num"' if column in right and tag == "td" else ""
        return f"<{tag}{attribute}>{body}</{tag}>"

    head = "".join(cell("th", str(c), c) for c in table.columns)
    rows = ["<tr>" + "".join(cell("td", str(v), c) for c, v in row.items()) + "</tr>"
            for _, row in table.iterrows()]
    return f"<table>\n<tr>{head}</tr>\n" + "\n".join(rows) + "\n</table>"


STYLE = ("body{font:14px/1.4 sans-serif;margin:1em 2em;color:#222}"
         "table{border-collapse:collapse;margin:0.5em 0 1em}"
         "th,td{padding:3px 9px;border-bottom:1px solid #ddd;text-align:left}"
         "th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}"
         "li{margin:0.2em 0}")


def html_page(title: str, parts: Sequence[tuple[str, pd.DataFrame]], notes: Sequence[str])\
        -> str:
    """A self-contained HTML page of the same tables and notes (what the Snakemake report
    shows inline; it needs no network)."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    if not parts:
        body.append("<p>(no runs configured)</p>")
    for heading, table in parts:
        if heading:
            body.append(f"<h2>{html.escape(heading)}</h2>")
        body.append(html_table(table) if not table.empty else "<p>(no runs configured)</p>")
    items = [line.strip() for note in notes for line in note.splitlines() if line.strip()]
    body.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head>\n<body>\n" + "\n".join(body)
            + "\n</body></html>\n")


def conventions(macs_tool: str, seeds: Sequence[int], noise_notes: Sequence[str]) -> str:
    """``results/tables/README.md``: what every table's columns mean, said once."""
    notes = convention_notes(macs_tool, seeds, noise_notes)
    return "\n".join(["# How to read the tables", "", *(f"- {n}" for n in notes)]) + "\n"


def convention_notes(macs_tool: str, seeds: Sequence[int], noise_notes: Sequence[str]
                     ) -> list[str]:
    """What every result table's columns mean (the README's bullets)."""
    if len(seeds) > 1:
        spread = f"mean ± sample standard deviation over seeds {list(seeds)}"
    else:
        spread = f"one run (seed {seeds[0]}), so no spread" if seeds else "no runs configured"
    return [
        f"Each number: {spread}. The CSV beside each table has every column at full precision "
        f"(top-5 error, the per-seed spread, the resizer's own parameters and GMACs).",
        "Precision: errors in % to 0.1, correlations, accuracies and EMD to 0.001, costs to "
        "three significant digits; spreads, standard errors and differences to the decimals "
        "of the value they qualify. Bold: the best healthy value of the primary metric "
        f"({', '.join(METRICS[m].header for m in dict.fromkeys(PRIMARY_METRIC.values()))}) per "
        "backbone.",
        "px (in → model): the resolution the data pipeline resizes to, then the one the "
        "backbone sees (a learned resizer maps the first to the second; one number when equal).",
        "epochs: total training epochs, those of the runs a model started from included, so "
        "rows with equal epochs had equal training.",
        *noise_notes,
        "params (M): every trainable parameter of resizer + backbone, in millions. GMACs: "
        f"multiply-accumulates per image in units of 1e9, counted with {macs_tool}; a fixed "
        "(bilinear/bicubic) resizer counts as 0.",
        "Metrics by task: " + "; ".join(
            f"{kind}: {', '.join(METRICS[m].header for m in TASK_METRICS[kind])}"
            for kind in dict.fromkeys(TASK_KIND.values())) + ".",
    ]
