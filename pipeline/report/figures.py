"""Figures: pure plotting functions, one PNG each, written atomically and deterministically.

Every function takes data that is already loaded (frames, arrays) and a destination path; none
reads parameters or files. PNGs are rendered with the Agg backend at a fixed dpi and without the
``Software`` metadata chunk, so rerunning a stage on one machine gives byte-identical files.
The seaborn theme is applied through :func:`matplotlib.pyplot.rc_context`, leaving the global
matplotlib state untouched.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from pipeline.core.io import atomic_path  # noqa: E402
from pipeline.core.noise import mean_se  # noqa: E402

log = logging.getLogger(__name__)

#: Resolution of every figure (fixed so reruns give the same bytes).
DPI = 120
#: Smallest colour limit of a residual panel (an all-zero residual still gets a valid scale).
RESIDUAL_FLOOR = 1e-6
#: Diverging colour map of residual panels.
RESIDUAL_CMAP = "RdBu_r"
#: Label of the cost curves' x axis.
GMACS_LABEL = "GMACs per image (resizer + backbone)"


@dataclass(frozen=True)
class Example:
    """One row of the example grid: a resizer input and the two resized versions of it.

    ``backbone`` labels the row (rows with the same label share one residual colour scale);
    ``fixed_name`` names the fixed resize the learned one is compared with (the task's
    default: bilinear for classification, bicubic for IQA)."""

    backbone: str
    image: np.ndarray  # (H, W, 3) float in [0, 1]: the resizer input
    bilinear: np.ndarray  # (h, w, 3) float: the fixed resize to the model size
    learned: np.ndarray  # (h, w, 3) float: the learned resizer's output, same shape as bilinear
    fixed_name: str = "bilinear"


# --- shared helpers -------------------------------------------------------------------------


@contextmanager
def _theme() -> Iterator[None]:
    """Seaborn's whitegrid theme for the duration of the block only."""
    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook")}
    with plt.rc_context(rc):
        yield


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise ``ValueError`` if ``frame`` is empty or lacks any of ``columns``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; "
                         f"present: {sorted(map(str, frame.columns))}")
    if frame.empty:
        raise ValueError(f"{what}: the table is empty, nothing to plot")


def _save(fig: Figure, path: Path) -> None:
    """Write ``fig`` as a PNG at ``path`` atomically and deterministically, then close it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight",
                        metadata={"Software": None})
    finally:
        plt.close(fig)
    log.info("wrote %s", path)


def _ordered(values: pd.Series) -> list:
    """Distinct values in order of first appearance (configuration order, not alphabetical)."""
    return list(pd.unique(values))


def _pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """Distinct (task, backbone) pairs in order of first appearance."""
    return list(dict.fromkeys(zip(frame["task"], frame["backbone"], strict=True)))


# --- cost curves ----------------------------------------------------------------------------

#: Marker per mode (with the colour, so that modes differ in shape as well as hue).
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*", "<", ">")


def house_order(modes: Sequence[str], house: Sequence[str] = ()) -> list[str]:
    """``house`` (every mode of the run, in one order), then any of ``modes`` it lacks."""
    return list(dict.fromkeys([*house, *modes]))


def _palette(modes: Sequence[str], house: Sequence[str] = ()
             ) -> dict[str, tuple[float, float, float]]:
    """One colour per mode (tab10: no two alike among ten), the same in every panel; with
    ``house`` (every mode of the run, in one order) the same in every figure too, whichever of
    them a figure shows."""
    order = house_order(modes, house)
    colours = sns.color_palette("tab10", max(len(order), 1))
    return {mode: colours[order.index(mode) % len(colours)] for mode in modes}


def draw_chance(ax: plt.Axes, chance: float | None) -> plt.Line2D | None:
    """A dashed grey line at the metric's chance level, labelled on the axis (None: no line)."""
    if chance is None:
        return None
    line = ax.axhline(chance, color="0.45", linestyle="--", linewidth=1, zorder=0)
    ax.annotate("chance", (1.0, chance), xycoords=("axes fraction", "data"), xytext=(-3, 3),
                textcoords="offset points", ha="right", va="bottom", fontsize=8, color="0.35")
    return line


def error_bars(table: pd.DataFrame, metric: str) -> np.ndarray:
    """± 1 standard error of each row's mean: the larger of the seed spread and the per-run
    error from the number of test images (``<metric>_se``), over sqrt(seeds); the spread
    alone where the table has no per-run error."""
    std = table[f"{metric}_std"].to_numpy(dtype=float)
    if f"{metric}_se" not in table:
        return std
    seeds = table["seeds"] if "seeds" in table else pd.Series(1, index=table.index)
    return np.array([mean_se(s, e, int(k)) for s, e, k in
                     zip(std, table[f"{metric}_se"], seeds)])


def dodge(x: pd.Series, share: float = 0.025) -> pd.Series:
    """Sideways offsets that spread points with the same x (e.g. equal GMACs) apart by
    ``share`` of the panel's x range, centred on their true x."""
    span = float(x.max() - x.min()) or float(abs(x.max())) or 1.0
    rank = x.groupby(x).cumcount()
    count = x.groupby(x).transform("count")
    return (rank - (count - 1) / 2) * share * span


def _caption(fig: Figure, text: str) -> None:
    """A note under the panels: what the error bars or colours mean."""
    fig.text(0.01, -0.02, text, ha="left", va="top", fontsize=8, color="0.25", wrap=True)


def plot_cost_curves(table: pd.DataFrame, metric: str, label: str, path: Path,
                     better: str = "lower", house: Sequence[str] = (),
                     chance: float | None = None) -> None:
    """Metric vs compute, one panel per backbone, one marker per mode, ± 1 s.e. bars, and a
    line at ``chance`` (the metric's chance level) where given; ``house``: every mode of the
    run in one order, so a mode has one colour and marker in every figure (:func:`_palette`).

    ``table`` needs ``backbone``, ``mode``, ``gmacs`` (GMACs per image, resizer + backbone),
    ``<metric>_mean`` and ``<metric>_std`` (NaN with one seed); with ``<metric>_se`` and
    ``seeds`` (the tables' noise columns) the bars are the mean's standard error, else the
    spread over seeds. Modes are told apart by colour and marker in one legend; no label sits
    on the points. ``label`` names the y axis, ``better`` which way is better.
    """
    mean, std = f"{metric}_mean", f"{metric}_std"
    _require_columns(table, ["backbone", "mode", "gmacs", mean, std], "cost curves")
    backbones, modes = _ordered(table["backbone"]), _ordered(table["mode"])
    palette, order = _palette(modes, house), house_order(modes, house)
    markers = {m: MARKERS[order.index(m) % len(MARKERS)] for m in modes}
    bars = error_bars(table, metric)
    with _theme():
        fig, axes = plt.subplots(1, len(backbones), figsize=(4.6 * len(backbones) + 1.8, 3.8),
                                 squeeze=False)
        for ax, backbone in zip(axes[0], backbones, strict=True):
            rows = table[table["backbone"] == backbone]
            shift = dodge(rows["gmacs"])
            for index, row in rows.iterrows():
                ax.errorbar(row["gmacs"] + shift[index], row[mean],
                            yerr=bars[table.index.get_loc(index)],
                            fmt=markers[row["mode"]], color=palette[row["mode"]], markersize=7,
                            capsize=3, linestyle="none", label=row["mode"])
            draw_chance(ax, chance)
            ax.set(title=str(backbone), xlabel=GMACS_LABEL, ylabel=label)
            ax.margins(x=0.15, y=0.12)
        handles = [plt.Line2D([], [], marker=markers[m], color=palette[m], linestyle="none",
                              markersize=7, label=m) for m in modes]
        fig.legend(handles=handles, title="mode", loc="center left", bbox_to_anchor=(1.0, 0.5),
                   frameon=False)
        fig.tight_layout()
        seeds = int(table["seeds"].max()) if "seeds" in table else None
        what = ("± 1 standard error of the mean" if f"{metric}_se" in table
                else "± 1 standard deviation over seeds")
        _caption(fig, f"{better.capitalize()} is better. Points of equal cost are spread "
                      f"sideways."
                      + (f" Dashed line: chance ({chance:g})." if chance is not None else "")
                      + f" Error bars: {what}"
                      + (f" ({seeds} seed{'s' if seeds != 1 else ''}; one run's error from "
                         f"its number of test images)" if seeds else "") + ".")
    _save(fig, path)


# --- example grid ---------------------------------------------------------------------------


def residual_map(bilinear: np.ndarray, learned: np.ndarray) -> tuple[np.ndarray, float]:
    """Channel-mean residual ``learned - bilinear`` (h, w) and its symmetric colour limit.

    The limit is ``max|residual|``, at least :data:`RESIDUAL_FLOOR` (so identical images still
    get a valid colour scale).
    """
    if bilinear.shape != learned.shape:
        raise ValueError(f"bilinear {bilinear.shape} and learned {learned.shape} differ in shape")
    residual = (np.asarray(learned, dtype=np.float64)
                - np.asarray(bilinear, dtype=np.float64)).mean(axis=-1)
    peak = float(np.nanmax(np.abs(residual))) if residual.size else 0.0
    return residual, max(peak, RESIDUAL_FLOOR) if np.isfinite(peak) else RESIDUAL_FLOOR


def _check_example(index: int, example: Example) -> None:
    """Raise ``ValueError`` naming the example unless its arrays are (h, w, 3) and agree."""
    name = f"example {index} ({example.backbone})"
    for field in ("image", "bilinear", "learned"):
        shape = np.shape(getattr(example, field))
        if len(shape) != 3 or shape[-1] != 3:
            raise ValueError(f"{name}: {field} has shape {shape}, expected (height, width, 3)")
    if example.bilinear.shape != example.learned.shape:
        raise ValueError(f"{name}: bilinear shape {example.bilinear.shape} != learned shape "
                         f"{example.learned.shape}")


def _size(array: np.ndarray) -> str:
    """``HxW`` of an image array."""
    return f"{array.shape[0]}x{array.shape[1]}"


def _residual_limits(examples: Sequence[Example]) -> dict[str, float]:
    """One symmetric colour limit per row label: the largest residual of its rows."""
    limits: dict[str, float] = {}
    for example in examples:
        _, peak = residual_map(example.bilinear, example.learned)
        limits[example.backbone] = max(limits.get(example.backbone, RESIDUAL_FLOOR), peak)
    return limits


def example_rows(examples: Sequence[Example]) -> list[list[Example]]:
    """The grid's rows: consecutive examples with the same label (one run) side by side."""
    return [list(group) for _, group in itertools.groupby(examples, key=lambda e: e.backbone)]


def plot_example_grid(examples: list[Example], path: Path) -> None:
    """One row per run (consecutive examples with the same ``backbone`` label), each example
    as four panels side by side: the input, its fixed and learned resizes, and their residual.

    Column titles on the first row (again where the fixed resize changes); each row labelled
    with its ``backbone`` and sizes and given one residual colour scale, whose bar says its
    unit (display intensity, 0 to 1)."""
    if not examples:
        raise ValueError("example grid: no examples to plot")
    for index, example in enumerate(examples):
        _check_example(index, example)
    limits = _residual_limits(examples)
    rows = example_rows(examples)
    columns = 4 * max(len(row) for row in rows)
    with _theme():
        fig, axes = plt.subplots(len(rows), columns, figsize=(2.0 * columns, 2.1 * len(rows) + 0.4),
                                 squeeze=False, layout="constrained")
        for index, (ax_row, row) in enumerate(zip(axes, rows, strict=True)):
            first = row[0]
            limit = limits[first.backbone]
            titled = index == 0 or first.fixed_name != rows[index - 1][0].fixed_name
            residuals = []
            for ax in ax_row:
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
            for ax in ax_row[4 * len(row):]:
                ax.set_visible(False)
            for k, example in enumerate(row):
                panels = ax_row[4 * k:4 * k + 4]
                for ax, image in zip(panels, [example.image, example.bilinear, example.learned],
                                     strict=False):
                    ax.imshow(np.clip(image, 0.0, 1.0), interpolation="nearest")
                residual, _ = residual_map(example.bilinear, example.learned)
                residuals.append(panels[3].imshow(residual, cmap=RESIDUAL_CMAP, vmin=-limit,
                                                  vmax=limit, interpolation="nearest"))
                if titled:
                    titles = ["input", example.fixed_name, "learned",
                              f"learned − {example.fixed_name}"]
                    for ax, title in zip(panels, titles, strict=True):
                        ax.set_title(title, fontsize=8)
            ax_row[0].set_ylabel(f"{first.backbone.replace(' · ', chr(10))}\n"
                                 f"{_size(first.image)} → {_size(first.learned)} px", fontsize=7)
            bar = fig.colorbar(residuals[0], ax=list(ax_row[:4 * len(row)]), fraction=0.02,
                               pad=0.01)
            bar.set_label("residual (0–1)", fontsize=7)
            bar.ax.tick_params(labelsize=6)
    _save(fig, path)


# --- ablation heatmaps ----------------------------------------------------------------------


def _grid(panels: int, width: float, height: float) -> tuple[Figure, list[Axes]]:
    """A figure with ``panels`` axes, at most three per row; unused axes hidden."""
    cols = min(panels, 3)
    rows = -(-panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[panels:]:
        ax.set_visible(False)
    return fig, flat[:panels]


def plot_ablation_heatmaps(table: pd.DataFrame, metric: str, label: str, path: Path) -> None:
    """Resizer ablation: one heatmap (rows r, columns n, cell ``<metric>_mean``) per
    (task, backbone) pair, each cell annotated with its standard error where the table has
    it; the colour scale spans at least ± 2 standard errors around the cells' mean, so noise
    does not look like structure; the seed count on each panel."""
    mean = f"{metric}_mean"
    _require_columns(table, ["task", "backbone", "r", "n", mean], "ablation heatmaps")
    pairs = _pairs(table)
    with _theme():
        fig, axes = _grid(len(pairs), 4.8, 3.6)
        for ax, (task, backbone) in zip(axes, pairs, strict=True):
            rows = table[(table["task"] == task) & (table["backbone"] == backbone)]
            rows = rows.assign(r=rows["r"].astype(int), n=rows["n"].astype(int))
            cells = rows.pivot_table(index="r", columns="n", values=mean, aggfunc="mean",
                                     dropna=False).sort_index().sort_index(axis=1)
            se = (float(np.nanmean(error_bars(rows, metric))) if f"{metric}_std" in rows
                  else float("nan"))
            centre, spread = float(np.nanmean(cells.values)), float(np.nanmax(
                np.abs(cells.values - np.nanmean(cells.values))))
            half = max(spread, 2 * se) if np.isfinite(se) else spread
            half = half if half > 0 else 1.0
            text = cells.map(lambda v: f"{v:.3g}") + (f"\n± {se:.2g}" if np.isfinite(se)
                                                     else "")
            sns.heatmap(cells, annot=text, fmt="", cmap="viridis", vmin=centre - half,
                        vmax=centre + half, ax=ax, cbar_kws={"label": label})
            seeds = int(rows["seeds"].max()) if "seeds" in rows else None
            ax.set_title(f"{task} · {backbone}"
                         + (f" ({seeds} seed{'s' if seeds != 1 else ''})" if seeds else ""))
            ax.set(xlabel="n (filters)", ylabel="r (residual blocks)")
        fig.tight_layout()
        if f"{metric}_std" in table:
            _caption(fig, "Cells: mean ± 1 standard error; colours span at least ± 2 standard "
                          "errors, so cells of one colour do not differ beyond noise.")
        else:
            _caption(fig, "Cells: mean (the table gives no spread or standard error).")
    _save(fig, path)


# --- training curves ------------------------------------------------------------------------


def _curve(ax: Axes, rows: pd.DataFrame, column: str, colour, label: str,
           floor: float | None) -> None:
    """Mean over seeds per cumulative epoch, with a ± 1 sd band (clipped at ``floor``) when
    there are several seeds."""
    stats = rows.groupby("at_epoch")[column].agg(["mean", "std", "count"])
    ax.plot(stats.index, stats["mean"], marker="o", markersize=3, color=colour, label=label)
    if (stats["count"] > 1).any():
        low = stats["mean"] - stats["std"].fillna(0)
        ax.fill_between(stats.index, low if floor is None else low.clip(lower=floor),
                        stats["mean"] + stats["std"].fillna(0), color=colour, alpha=0.2,
                        linewidth=0)


def plot_training_curves(history: pd.DataFrame, path: Path,
                         metrics: dict[str, tuple[str, str]] | None = None,
                         house: Sequence[str] = ()) -> None:
    """Per (task, backbone): train loss and the tables' metric on the validation split per
    epoch, one line per mode, against cumulative epochs (a fine-tune continues where the run
    it started from ended: column ``start``, 0 by default), mean over seeds with a ± 1 sd
    band (never below zero) when there are several.

    ``metrics``: per task, the validation column and its label (default: the loss);
    ``house``: as for :func:`plot_cost_curves`."""
    columns = ["task", "backbone", "mode", "seed", "epoch", "train_loss", "val_loss"]
    _require_columns(history, columns, "training curves")
    metrics = metrics or {}
    history = history.assign(at_epoch=history["epoch"] + history.get("start", 0))
    pairs, modes = _pairs(history), _ordered(history["mode"])
    palette = _palette(modes, house)
    with _theme():
        fig, axes = plt.subplots(len(pairs), 2, figsize=(11, 3.2 * len(pairs)), squeeze=False)
        for row, (task, backbone) in zip(axes, pairs, strict=True):
            rows = history[(history["task"] == task) & (history["backbone"] == backbone)]
            val, val_label = metrics.get(task, ("val_loss", "val loss"))
            for ax, (column, label) in zip(row, (("train_loss", "train loss"),
                                                 (val, val_label)), strict=True):
                for mode in [m for m in modes if m in set(rows["mode"])]:
                    _curve(ax, rows[rows["mode"] == mode], column, palette[mode], mode,
                           0.0 if column.endswith(("loss", "err")) else None)
                ax.set(title=f"{task} · {backbone}: {label}", xlabel="epoch (cumulative)",
                       ylabel=label)
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            row[1].legend(title="mode", loc="upper left", bbox_to_anchor=(1.02, 1),
                          frameon=False, fontsize=8)
        fig.tight_layout()
        seeds = history.groupby(["task", "backbone", "mode"])["seed"].nunique().max()
        _caption(fig, "Fine-tunes start where the run they continue ended. "
                      + (f"Lines: mean over {seeds} seeds, band ± 1 sd." if seeds > 1
                         else "One seed per line."))
    _save(fig, path)


def plot_frequency_response(response: pd.DataFrame, model_size: int, input_size: int,
                            path: Path) -> None:
    """One line per resizer (columns ``resizer``, ``frequency``, ``response``): how strongly
    each band of the input drives the output; the model size's Nyquist frequency marked."""
    _require_columns(response, ["resizer", "frequency", "response"], "frequency response")
    if response.empty:
        raise ValueError("no resizer to plot a frequency response for")
    with _theme():
        fig, ax = plt.subplots(figsize=(7.0, 4.2))
        sns.lineplot(data=response.assign(response=response["response"].clip(lower=1e-4)),
                     x="frequency", y="response", hue="resizer", marker="o", ax=ax)
        nyquist = 0.5 * model_size / input_size
        ax.axvline(nyquist, color="0.4", linestyle="--", linewidth=1)
        ax.text(nyquist, ax.get_ylim()[1] * 0.95, f" {model_size}-px Nyquist", va="top",
                fontsize=9, color="0.3")
        ax.set_yscale("log")
        ax.set(xlabel=f"input frequency (cycles per pixel at {input_size} px)",
               ylabel="output change / band energy",
               title="What each band of the input does to the resizer's output")
        ax.legend(title=None, fontsize=8)
        _save(fig, path)


def plot_message(text: str, path: Path) -> None:
    """A figure holding only ``text``: what a declared figure shows when the configuration
    asks for nothing to plot in it (so it never looks like a stale result)."""
    with _theme():
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
        _save(fig, path)
