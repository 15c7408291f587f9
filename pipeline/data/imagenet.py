"""ImageNet manifests from an extracted ``train/<wnid>/``, ``val/<wnid>/`` tree.

A manifest is a CSV with one row per image: ``path,label,wnid,width,height``. Labels are the
index of the wnid in the sorted list of train classes (torchvision's and the devkit's order for
real ImageNet). Paths are written as found under the configured root, so a relative root gives
relative (portable) paths.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from PIL import Image
from tqdm import tqdm

from pipeline.errors import DatasetError

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ["path", "label", "wnid", "width", "height"]
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}




def class_dirs(split_dir: Path) -> list[str]:
    """Sorted wnid directory names directly under a split directory."""
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir())


def image_files(class_dir: Path) -> list[Path]:
    """Image files of one class directory, sorted by name."""
    return sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def check_tree(root: Path) -> list[str]:
    """Validate the layout before any image is read; returns the sorted train wnids."""
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise DatasetError(f"{root}: no '{split}/' directory; expected an extracted ImageNet "
                               f"tree {root}/train/<wnid>/*.JPEG and {root}/val/<wnid>/*.JPEG")
    wnids = class_dirs(root / "train")
    if not wnids:
        raise DatasetError(f"{root}/train has no class directories (<wnid>/)")
    unknown = sorted(set(class_dirs(root / "val")) - set(wnids))
    if unknown:
        raise DatasetError(f"{root}/val has classes absent from train: {unknown[:5]}; "
                           f"the val tree must use the train wnids")
    return wnids


def scan_split(root: Path, split: str, wnids: list[str]) -> pd.DataFrame:
    """Manifest rows of one split (image size read from the file header)."""
    label_of = {w: i for i, w in enumerate(wnids)}
    rows = []
    files = [(w, f) for w in wnids if (root / split / w).is_dir()
             for f in image_files(root / split / w)]
    for wnid, path in tqdm(files, desc=f"scan {split}", unit="img", mininterval=2):
        with Image.open(path) as img:
            width, height = img.size
        rows.append((str(path), label_of[wnid], wnid, width, height))
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


def scan_tree(root: str | Path) -> tuple[list[str], dict[str, pd.DataFrame]]:
    """(wnids, {split: manifest}) of an extracted ImageNet tree."""
    root = Path(root)
    wnids = check_tree(root)
    manifests = {split: scan_split(root, split, wnids) for split in ("train", "val")}
    for split, frame in manifests.items():
        log.info("%s: %d images in %d classes", split, len(frame), frame["wnid"].nunique())
    return wnids, manifests
