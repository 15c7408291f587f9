"""Manifests: the CSV files a prepared dataset is described by, with an index that proves them
whole.

The stage that writes a manifest folder writes ``manifests.json`` last: each file's row count
and sha256. Every stage that reads a manifest checks it against the index first, so a file cut
at a line or in the middle of one, or edited by hand, stops the reader with the path and the
fix before any training, under either engine (DVC's hashes catch it too, Snakemake's times do
not). The images a manifest lists are checked too before training (:func:`check_files`: one
``stat`` each), so an image deleted after its dataset was prepared is one error up front, not
a traceback mid-epoch.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from pipeline.core.errors import DatasetError
from pipeline.core.io import read_json, write_csv, write_json

INDEX = "manifests.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifests(folder: Path, frames: Mapping[str, pd.DataFrame]) -> None:
    """Write ``<name>.csv`` for each frame, then the index that describes them."""
    for name, frame in frames.items():
        write_csv(folder / f"{name}.csv", frame)
    index_manifests(folder, {name: len(frame) for name, frame in frames.items()})


def index_manifests(folder: Path, rows: Mapping[str, int]) -> None:
    """Write the index of manifests already in ``folder`` (name -> row count)."""
    write_json(folder / INDEX, {name: {"rows": count, "sha256": _sha256(folder / f"{name}.csv")}
                                for name, count in rows.items()})


def manifest_names(folder: Path) -> list[str]:
    """The manifests a folder's index lists."""
    return list(_index(folder))


def _index(folder: Path) -> dict[str, dict]:
    path = folder / INDEX
    if not path.is_file():
        raise DatasetError(
            f"{folder}: no {INDEX}, so its manifests cannot be checked; it is written by the "
            f"stage that prepares this folder (prepare-imagenet, prepare-ava or preresize): "
            f"rerun it (`dvc repro` / `snakemake`), do not assemble the folder by hand")
    return read_json(path)


def read_manifest(folder: Path, name: str) -> pd.DataFrame:
    """``<folder>/<name>.csv``, after checking it against the folder's index."""
    path, entry = folder / f"{name}.csv", _index(folder).get(name)
    if entry is None or not path.is_file():
        raise DatasetError(f"{path}: {'missing' if entry else f'not listed in {INDEX}'}; rerun "
                           f"the stage that writes {folder} (`dvc repro` / `snakemake`)")
    if _sha256(path) != entry["sha256"]:
        raise DatasetError(
            f"{path} has changed since its stage wrote it ({entry['rows']} rows then; cut short "
            f"or edited since): rerun the stage that writes {folder} (`dvc repro` rewrites it; "
            f"under Snakemake, delete the folder and rerun)")
    frame = pd.read_csv(path)
    if len(frame) != entry["rows"]:
        raise DatasetError(f"{path}: {len(frame)} rows, its index says {entry['rows']}; rerun "
                           f"the stage that writes {folder}")
    return frame


def check_files(frame: pd.DataFrame, manifest: Path, shown: int = 3) -> None:
    """Every image ``frame`` lists exists and is not empty; DatasetError naming the first few
    and the count otherwise."""
    bad = []
    for path in frame["path"]:
        try:
            if os.stat(path).st_size == 0:
                bad.append(f"{path} (empty)")
        except OSError as exc:
            bad.append(f"{path} ({exc.strerror.lower() if exc.strerror else 'unreadable'})")
    if bad:
        raise DatasetError(
            f"{manifest}: {len(bad)} of {len(frame)} images it lists are gone or empty since it "
            f"was written ({', '.join(bad[:shown])}{', ...' if len(bad) > shown else ''}); "
            f"restore them, or prepare the dataset again (`dvc repro --force prepare-imagenet` "
            f"or `prepare-ava`, then `dvc repro`; under Snakemake `snakemake --forcerun "
            f"prepare_imagenet` or `prepare_ava`)")
