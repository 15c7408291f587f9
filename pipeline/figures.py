"""Figures: pure plotting functions, one PNG each, written atomically and deterministically.

Every function takes data that is already loaded (frames, arrays) and a destination path; none
reads parameters or files. PNGs are rendered with the Agg backend at a fixed dpi and without the
``Software`` metadata chunk, so rerunning a stage on one machine gives byte-identical files.
The seaborn theme is applied through :func:`matplotlib.pyplot.rc_context`, leaving the global
matplotlib state untouched.
"""

from __future__ import annotations

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

from pipeline.io import atomic_path  # noqa: E402

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
    """One row of the example grid: a resizer input and the two resized versions of it."""

    backbone: str
    image: np.ndarray  # (H, W, 3) float in [0, 1]: the resizer input
    bilinear: np.ndarray  # (h, w, 3) float: the fixed (bilinear) resize to the model size
    learned: np.ndarray  # (h, w, 3) float: the learned resizer's output, same shape as bilinear


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


def _palette(modes: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per mode, the same in every panel of a figure."""
    return dict(zip(modes, sns.color_palette("colorblind", len(modes)), strict=True))


def _pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """Distinct (task, backbone) pairs in order of first appearance."""
    return list(dict.fromkeys(zip(frame["task"], frame["backbone"], strict=True)))


# --- cost curves ----------------------------------------------------------------------------


def _cost_panel(ax: Axes, rows: pd.DataFrame, metric: str, palette: dict, legend: bool) -> None:
    """Scatter one backbone's runs (error vs GMACs), with std error bars and mode labels."""
    mean, std = f"{metric}_mean", f"{metric}_std"
    modes = list(palette)
    sns.scatterplot(data=rows, x="gmacs", y=mean, hue="mode", style="mode", hue_order=modes,
                    style_order=modes, palette=palette, s=60, ax=ax, legend=legend, zorder=3)
    for row in rows.itertuples(index=False):
        x, y, err = getattr(row, "gmacs"), getattr(row, mean), getattr(row, std)
        if np.isfinite(err):
            ax.errorbar(x, y, yerr=err, fmt="none", ecolor=palette[row.mode], capsize=3,
                        zorder=2)
        if np.isfinite(y):
            ax.annotate(row.mode, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7)


def plot_cost_curves(table: pd.DataFrame, metric: str, label: str, path: Path) -> None:
    """Metric vs compute, one panel per backbone, one point per row (mode).

    ``table`` needs ``backbone``, ``mode``, ``gmacs`` (GMACs per image, resizer + backbone),
    ``<metric>_mean`` and ``<metric>_std`` (NaN when there is one seed: no error bar).
    ``label`` names the y axis, e.g. ``"top-1 error (%)"``.
    """
    mean, std = f"{metric}_mean", f"{metric}_std"
    _require_columns(table, ["backbone", "mode", "gmacs", mean, std], "cost curves")
    backbones, modes = _ordered(table["backbone"]), _ordered(table["mode"])
    palette = _palette(modes)
    with _theme():
        fig, axes = plt.subplots(1, len(backbones), figsize=(5 * len(backbones), 4),
                                 squeeze=False, sharey=False)
        for i, (ax, backbone) in enumerate(zip(axes[0], backbones, strict=True)):
            rows = table[table["backbone"] == backbone]
            _cost_panel(ax, rows, metric, palette, legend=i == len(backbones) - 1)
            ax.set(title=str(backbone), xlabel=GMACS_LABEL, ylabel=label)
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.02, 1), title="mode")
        fig.tight_layout()
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


def _example_row(fig: Figure, axes: Sequence[Axes], example: Example) -> None:
    """Draw one example: input, bilinear, learned, residual (with its colorbar)."""
    images = [(example.image, f"input ({_size(example.image)})"),
              (example.bilinear, f"bilinear ({_size(example.bilinear)})"),
              (example.learned, f"learned ({_size(example.learned)})")]
    for ax, (image, title) in zip(axes, images, strict=False):
        ax.imshow(np.clip(image, 0.0, 1.0), interpolation="nearest")
        ax.set_title(title, fontsize=9)
    residual, limit = residual_map(example.bilinear, example.learned)
    shown = axes[3].imshow(residual, cmap=RESIDUAL_CMAP, vmin=-limit, vmax=limit,
                           interpolation="nearest")
    axes[3].set_title("residual: learned - bilinear", fontsize=9)
    bar = fig.colorbar(shown, ax=axes[3], fraction=0.046, pad=0.04)
    bar.ax.tick_params(labelsize=7)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    axes[0].set_ylabel(example.backbone)


def plot_example_grid(examples: list[Example], path: Path) -> None:
    """One row per example: the input, its bilinear and learned resizes, and their residual."""
    if not examples:
        raise ValueError("example grid: no examples to plot")
    for index, example in enumerate(examples):
        _check_example(index, example)
    with _theme():
        fig, axes = plt.subplots(len(examples), 4, figsize=(12, 3 * len(examples)),
                                 squeeze=False)
        for row, example in zip(axes, examples, strict=True):
            _example_row(fig, row, example)
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
    (task, backbone) pair, annotated, with ``label`` on the colour bar."""
    mean = f"{metric}_mean"
    _require_columns(table, ["task", "backbone", "r", "n", mean], "ablation heatmaps")
    pairs = _pairs(table)
    with _theme():
        fig, axes = _grid(len(pairs), 4.5, 3.5)
        for ax, (task, backbone) in zip(axes, pairs, strict=True):
            rows = table[(table["task"] == task) & (table["backbone"] == backbone)]
            cells = rows.pivot_table(index="r", columns="n", values=mean, aggfunc="mean",
                                     dropna=False).sort_index().sort_index(axis=1)
            sns.heatmap(cells, annot=True, fmt=".3g", cmap="viridis", ax=ax,
                        cbar_kws={"label": label})
            ax.set_title(f"{task} · {backbone}")
            ax.set(xlabel="n (filters)", ylabel="r (residual blocks)")
        fig.tight_layout()
    _save(fig, path)


# --- training curves ------------------------------------------------------------------------


def plot_training_curves(history: pd.DataFrame, path: Path) -> None:
    """Loss per epoch: one row of panels per (task, backbone), columns train and val loss,
    one line per mode (mean over seeds, with a +-1 sd band)."""
    columns = ["task", "backbone", "mode", "seed", "epoch", "train_loss", "val_loss"]
    _require_columns(history, columns, "training curves")
    pairs, modes = _pairs(history), _ordered(history["mode"])
    palette = _palette(modes)
    with _theme():
        fig, axes = plt.subplots(len(pairs), 2, figsize=(11, 3.2 * len(pairs)), squeeze=False)
        for row, (task, backbone) in zip(axes, pairs, strict=True):
            rows = history[(history["task"] == task) & (history["backbone"] == backbone)]
            present = [m for m in modes if m in set(rows["mode"])]
            for ax, loss in zip(row, ("train_loss", "val_loss"), strict=True):
                sns.lineplot(data=rows, x="epoch", y=loss, hue="mode", hue_order=present,
                             palette=palette, errorbar="sd", marker="o", ax=ax,
                             legend=loss == "val_loss")
                ax.set(title=f"{task} · {backbone}: {loss.replace('_', ' ')}", xlabel="epoch",
                       ylabel=loss.replace("_", " "))
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            sns.move_legend(row[1], "upper left", bbox_to_anchor=(1.02, 1), title="mode")
        fig.tight_layout()
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
