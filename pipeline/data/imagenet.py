"""ImageNet manifests from an extracted ``train/<wnid>/``, ``val/<wnid>/`` tree or from the
official ILSVRC2012 archives, every image checked once.

A manifest is a CSV with one row per usable image: ``path,label,wnid,width,height``. Labels are
the index of the wnid in the sorted list of train classes (torchvision's ImageFolder order, and
the same for both layouts). Paths are written as found under the configured root (or
``extract_to``), so a relative root gives relative (portable) paths.

``data.imagenet.layout`` says where the images come from:

- ``tree``: ``root/train/<wnid>/*.JPEG`` and ``root/val/<wnid>/*.JPEG`` as users often hold them;
- ``archives``: the three official archives in ``root``, extracted once to ``extract_to``
  (see :mod:`pipeline.data.archives`; val labels from the devkit's ground truth);
- ``auto``: ``tree`` when ``root`` has ``train/`` and ``val/``, else ``archives``.

Every image is examined by :mod:`pipeline.data.checks` (dropped, converted or kept; see there);
files found but not usable as labelled images (val files the ground truth does not cover, files
with a non-image suffix, archive members refused as links, devices, absolute or ``..`` paths,
sparse or oversized files) are listed as ignored, with the reason. Counts are reported per split; they must equal
the official ones (1000 classes, 1,281,167 train, 50,000 val) only when
``data.imagenet.expect_official`` is true, checked before any image is decoded.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image
from tqdm import tqdm

from pipeline.core.errors import DatasetError
from pipeline.data import archives
from pipeline.data.checks import (CONVERT, DROP, IGNORE, REPORT_COLUMNS, CheckJob, examine_all,
                                  log_summary, split_summary)
from pipeline.data.prepared import Prepared
from pipeline.params.config import SYNTHETIC_IMAGENET_DIR

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ["path", "label", "wnid", "width", "height"]
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
SPLITS = ("train", "val")
LAYOUTS = ("auto", "tree", "archives")
UNLABELED, NOT_IMAGE = "unlabeled", "not_image"
CONVERTED_DIR = "converted"


def class_dirs(split_dir: Path) -> list[str]:
    """Sorted wnid directory names directly under a split directory."""
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir())


def image_files(class_dir: Path) -> list[Path]:
    """Image files of one class directory, sorted by name."""
    return sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def other_files(class_dir: Path) -> list[Path]:
    """Entries of a class directory that are not image files (reported, never used)."""
    return sorted(p for p in class_dir.iterdir() if p.suffix.lower() not in IMAGE_SUFFIXES)


def check_tree(root: Path) -> list[str]:
    """Validate the layout before any image is read; returns the sorted train wnids."""
    for split in SPLITS:
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
    """Manifest rows of one split (image size read from the file header, nothing checked)."""
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
    """(wnids, {split: manifest}) of an extracted ImageNet tree, headers only (a quick look;
    the prepare stage uses :func:`prepare`, which checks every image)."""
    root = Path(root)
    wnids = check_tree(root)
    manifests = {split: scan_split(root, split, wnids) for split in SPLITS}
    for split, frame in manifests.items():
        log.info("%s: %d images in %d classes", split, len(frame), frame["wnid"].nunique())
    return wnids, manifests


@dataclass(frozen=True)
class ImagenetConfig:
    """Mirrors ``data.imagenet`` in params.yaml."""

    root: Path
    layout: str = "auto"
    extract_to: Path = Path("data/extracted/imagenet")
    verify_md5: bool = False
    expect_official: bool = False

    @classmethod
    def from_params(cls, section: dict[str, Any]) -> ImagenetConfig:
        return cls(Path(section["root"]), section["layout"], Path(section["extract_to"]),
                   section["verify_md5"], section["expect_official"])


@dataclass
class Source:
    """What prepare examines: (path, wnid) per split in manifest order, plus ignored files."""

    layout: str
    wnids: list[str]
    files: dict[str, list[tuple[str, str]]]
    # (path, split, verdict, detail) of files found but not used
    ignored: list[tuple[str, str, str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # recorded in the summary


def resolve_layout(cfg: ImagenetConfig) -> str:
    """``tree`` or ``archives`` for ``cfg``; DatasetError saying what was expected otherwise."""
    root = cfg.root
    if not root.is_dir():
        hint = " (run the synth-imagenet stage first)" if str(root) == SYNTHETIC_IMAGENET_DIR else ""
        raise DatasetError(f"data.imagenet.root = {str(root)!r} is not a directory{hint}")
    if cfg.layout not in LAYOUTS:
        raise DatasetError(f"data.imagenet.layout = {cfg.layout!r}; allowed: {', '.join(LAYOUTS)}")
    is_tree = (root / "train").is_dir() and (root / "val").is_dir()
    if cfg.layout == "tree" or (cfg.layout == "auto" and is_tree):
        return "tree"
    if cfg.layout == "auto" and archives.missing_archives(root):
        names = ", ".join(name for name, _ in archives.ARCHIVES.values())
        raise DatasetError(f"data.imagenet.root = {str(root)!r} holds neither an extracted tree "
                           f"(train/<wnid>/*.JPEG, val/<wnid>/*.JPEG) nor the official archives "
                           f"({names}); put ImageNet there in one of these layouts")
    return "archives"


def tree_source(root: Path) -> Source:
    """Files of an extracted tree, sorted by class then name."""
    wnids = check_tree(root)
    files, ignored = {}, []
    for split in SPLITS:
        dirs = [root / split / w for w in wnids if (root / split / w).is_dir()]
        files[split] = [(str(f), d.name) for d in dirs for f in image_files(d)]
        ignored += [(str(f), split, NOT_IMAGE, "not an image file name (.JPEG, .jpg, .png)")
                    for d in dirs for f in other_files(d)]
        ignored += [(str(f), split, NOT_IMAGE, "outside any class directory")
                    for f in sorted((root / split).iterdir()) if not f.is_dir()]
    return Source("tree", wnids, files, ignored)


def archive_source(cfg: ImagenetConfig) -> Source:
    """Files of the archives' extraction: train as extracted, val as the ground truth lists them
    (a ground-truth line without its file is examined, and dropped, as missing)."""
    if cfg.extract_to.resolve().is_relative_to(cfg.root.resolve()):
        raise DatasetError(f"data.imagenet.extract_to = {str(cfg.extract_to)!r} is inside "
                           f"data.imagenet.root = {str(cfg.root)!r}, the stage's input; extract "
                           f"elsewhere (e.g. data/extracted/imagenet)")
    devkit, record = archives.ensure_extracted(cfg.root, cfg.extract_to, cfg.verify_md5)
    tree = cfg.extract_to
    wnids = class_dirs(tree / "train")
    unknown = sorted(set(wnids) - set(devkit.wnid_to_words))
    if unknown:
        raise DatasetError(f"{archives.ARCHIVES['train'][0]} has classes {unknown[:5]} that are "
                           f"not leaf synsets of the devkit's {archives.META_MAT}")
    val = []
    for number in range(1, len(devkit.val_ids) + 1):
        wnid = devkit.val_wnid(number)
        if wnid not in wnids:
            raise DatasetError(f"val image {number} is labelled {wnid}, a class absent from "
                               f"{archives.ARCHIVES['train'][0]}")
        val.append((str(tree / "val" / wnid / f"ILSVRC2012_val_{number:08d}.JPEG"), wnid))
    train = [(str(f), w) for w in wnids for f in image_files(tree / "train" / w)]
    unlabeled_dir = tree / archives.UNLABELED_DIR
    ignored = [(str(f), "val", UNLABELED, "no line for it in the devkit's val ground truth")
               for f in (sorted(unlabeled_dir.iterdir()) if unlabeled_dir.is_dir() else [])]
    marker = archives.read_marker(tree) or {}
    ignored += [(path, split, archives.REFUSED, reason)
                for path, split, reason in marker.get("refused", [])]
    return Source("archives", wnids, {"train": train, "val": val}, ignored, {"archives": record})


def collect(cfg: ImagenetConfig) -> Source:
    """The files to examine, for the configured layout (extracting archives if needed)."""
    layout = resolve_layout(cfg)
    source = tree_source(cfg.root) if layout == "tree" else archive_source(cfg)
    found = {"classes": len(source.wnids), **{s: len(f) for s, f in source.files.items()}}
    log.info("ImageNet (%s layout): %d classes, %d train and %d val files", layout,
             found["classes"], found["train"], found["val"])
    mismatched = {k: (v, archives.OFFICIAL[k]) for k, v in found.items()
                  if v != archives.OFFICIAL[k]}
    if cfg.expect_official and mismatched:
        details = ", ".join(f"{k} {v} (official {o:,})" for k, (v, o) in mismatched.items())
        raise DatasetError(f"data.imagenet.expect_official is true but {cfg.root} has {details}; "
                           f"complete the dataset, or set expect_official: false for a subset")
    source.extra["official"] = {"expected": archives.OFFICIAL, "found": found,
                                "matches": not mismatched, "required": cfg.expect_official}
    return source


def converted_name(path: str, split: str) -> Path:
    """Where a converted copy lives, relative to the output folder."""
    p = Path(path)
    return Path(CONVERTED_DIR) / split / p.parent.name / p.name


def prepare_configured(params: dict[str, Any], write_dir: Path, out_dir: Path) -> Prepared:
    """:func:`prepare` of what :func:`collect` finds, as params.yaml's ``data.imagenet`` and
    ``data.check`` say."""
    return _prepare_checked(ImagenetConfig.from_params(params["data"]["imagenet"]), params,
                            write_dir, out_dir)


def prepare_tree(root: Path, params: dict[str, Any], write_dir: Path, out_dir: Path) -> Prepared:
    """:func:`prepare` of the extracted tree at ``root`` (not ``data.imagenet``'s), as
    ``data.check`` says."""
    return _prepare_checked(ImagenetConfig(root, "tree"), params, write_dir, out_dir)


def _prepare_checked(cfg: ImagenetConfig, params: dict[str, Any], write_dir: Path,
                     out_dir: Path) -> Prepared:
    check = params["data"]["check"]
    return prepare(collect(cfg), write_dir, out_dir, check["workers"], check["convert_quality"])


def prepare(source: Source, write_dir: Path, out_dir: Path, workers: int,
            quality: int) -> Prepared:
    """Examine every file of ``source``; converted copies are written under ``write_dir`` and
    referenced under ``out_dir`` (the same folder once the caller renames it into place)."""
    label_of = {w: i for i, w in enumerate(source.wnids)}
    manifests, splits, report = {}, {}, []
    for split in SPLITS:
        files = source.files[split]
        jobs = [CheckJob(path, str(write_dir / converted_name(path, split)), quality)
                for path, _ in files]
        results = examine_all(jobs, workers, desc=f"check {split}")
        rows = []
        for (path, wnid), result in zip(files, results, strict=True):
            if result.action == DROP:
                report.append((path, split, result.verdict, DROP, result.detail))
                continue
            if result.action == CONVERT:
                path = str(out_dir / converted_name(path, split))
                report.append((result.path, split, result.verdict, CONVERT,
                               f"converted to {path}; {result.detail}"))
            rows.append((path, label_of[wnid], wnid, result.width, result.height))
        manifests[split] = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
        splits[split] = split_summary(results)
        if not rows:
            raise DatasetError(f"ImageNet {split}: none of {len(files)} files is usable "
                               f"({splits[split]['dropped_by_reason']})")
    report += [(path, split, verdict, IGNORE, detail)
               for path, split, verdict, detail in source.ignored]
    log_summary("imagenet", splits)
    if source.ignored:
        log.warning("%d files found but not used (listed in the report)", len(source.ignored))
    summary = {
        "dataset": "imagenet", "layout": source.layout, "classes": len(source.wnids),
        "splits": splits,
        "total": {k: sum(s[k] for s in splits.values())
                  for k in ("source", "kept", "converted", "dropped")},
        "ignored": dict(sorted(Counter(verdict for _, _, verdict, _ in source.ignored).items())),
        **source.extra,
    }
    classes = pd.DataFrame({"label": range(len(source.wnids)), "wnid": source.wnids})
    return Prepared(manifests, {"classes": classes},
                    pd.DataFrame(report, columns=REPORT_COLUMNS), summary)

