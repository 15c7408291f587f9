"""AVA manifests: vote histograms, the split, and every image checked once.

Input (the real AVA, or the synthetic set in its layout): ``AVA.txt`` with 15 whitespace-separated
columns (row index, image id, ten vote counts for scores 1..10, semantic tag 1, semantic tag 2
(0 = none), challenge id), images ``images/<id>.jpg``, and optionally the official generic split
``aesthetics_image_lists/generic_ls_train.jpgl`` (train) and ``generic_test.jpgl`` (test), one
image id per line.

``data.ava.split``: ``official`` uses those lists (they must exist), ``seeded`` draws a test share
of ``test_fraction`` with ``split_seed``, ``auto`` takes the lists when both exist. The split used
is written beside the manifests (``split.csv``: image_id, split for every AVA.txt row it assigns)
and described in the summary.

Output per split: ``path,image_id,width,height,votes,mean,std,p1..p10`` where p is the vote
histogram normalised to sum to 1, ``mean = sum_k k p(k)`` and ``std`` its standard deviation.
Rows are dropped (and reported) when their image is missing, empty, truncated or undecodable
(see :mod:`pipeline.data.checks`), when they have no votes, or repeat an earlier row's id; files
without a row, list entries without a row and rows in neither official list are reported as
ignored. Per split, source rows = kept + dropped.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.errors import DatasetError
from pipeline.data.checks import (CONVERT, DROP, IGNORE, REPORT_COLUMNS, CheckJob, FileCheck,
                                  examine_all, log_summary, split_summary)
from pipeline.data.prepared import Prepared
from pipeline.params.config import SYNTHETIC_AVA_DIR

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
SPLIT_MODES = ("auto", "official", "seeded")
LISTS = {"train": "aesthetics_image_lists/generic_ls_train.jpgl",
         "test": "aesthetics_image_lists/generic_test.jpgl"}
VOTE_COLUMNS = [f"v{k}" for k in range(1, 11)]
AVA_COLUMNS = ["row", "image_id", *VOTE_COLUMNS, "tag1", "tag2", "challenge"]
P_COLUMNS = [f"p{k}" for k in range(1, 11)]
MANIFEST_COLUMNS = ["path", "image_id", "width", "height", "votes", "mean", "std", *P_COLUMNS]
NO_VOTES, DUPLICATE, UNLABELED, NO_ROW, NOT_IN_SPLIT, OUTSIDE = (
    "no_votes", "duplicate_row", "unlabeled", "no_label_row", "not_in_split", "outside_root")
CONVERTED_DIR = "converted"


@dataclass(frozen=True)
class AvaConfig:
    """Mirrors ``data.ava`` in params.yaml."""

    root: Path
    split: str = "auto"
    test_fraction: float = 0.078
    split_seed: int = 0

    @classmethod
    def from_params(cls, section: dict[str, Any]) -> AvaConfig:
        return cls(Path(section["root"]), section["split"], section["test_fraction"],
                   section["split_seed"])


def check_root(root: Path) -> None:
    """DatasetError saying where AVA must be when ``root`` does not hold it."""
    if not (root / "AVA.txt").is_file():
        hint = (" (run the synth-ava stage first)" if str(root) == SYNTHETIC_AVA_DIR else "")
        raise DatasetError(f"data.ava.root = {str(root)!r} has no AVA.txt{hint}; put AVA there "
                           f"(AVA.txt, images/<id>.jpg, optionally aesthetics_image_lists/"
                           f"generic_ls_train.jpgl and generic_test.jpgl) or set data.ava.root "
                           f"to {SYNTHETIC_AVA_DIR!r} for the embedded synthetic set")


def parse_ava_txt(path: Path) -> pd.DataFrame:
    """AVA.txt as a frame with AVA_COLUMNS (ints), in file order."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = [int(f) for f in fields]
        except ValueError:
            values = []
        if len(values) != len(AVA_COLUMNS) or min(values) < 0:
            raise DatasetError(f"{path}: line {number} is {line.strip()!r}; expected 15 "
                               f"non-negative integers (row index, image id, ten vote counts, "
                               f"tag 1, tag 2, challenge id)")
        rows.append(values)
    if not rows:
        raise DatasetError(f"{path} has no rows")
    return pd.DataFrame(rows, columns=AVA_COLUMNS)


def read_jpgl(path: Path) -> list[int]:
    """Image ids of a .jpgl split list, one per line."""
    ids = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                ids.append(int(line.strip()))
            except ValueError:
                raise DatasetError(f"{path}: line {number} is {line.strip()!r}, not an image "
                                   f"id") from None
    return ids


def vote_stats(votes: np.ndarray) -> pd.DataFrame:
    """votes, mean, std and p1..p10 of (n, 10) vote counts (rows with no votes give NaN)."""
    votes = np.asarray(votes, dtype=np.float64)
    total = votes.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = votes / total[:, None]
    scores = np.arange(1, 11)
    mean = p @ scores
    std = np.sqrt(np.clip(p @ scores**2 - mean**2, 0, None))
    frame = pd.DataFrame(p, columns=P_COLUMNS)
    frame.insert(0, "std", std)
    frame.insert(0, "mean", mean)
    frame.insert(0, "votes", total.astype(np.int64))
    return frame


def choose_split(ids: list[int], cfg: AvaConfig) -> tuple[dict[int, str], dict[str, Any],
                                                          list[tuple[int, str]]]:
    """(id -> split, description, list entries without an AVA.txt row) for ``ids``."""
    lists = {s: cfg.root / rel for s, rel in LISTS.items()}
    have = all(p.is_file() for p in lists.values())
    if cfg.split not in SPLIT_MODES:
        raise DatasetError(f"data.ava.split = {cfg.split!r}; allowed: {', '.join(SPLIT_MODES)}")
    if cfg.split == "official" and not have:
        raise DatasetError(f"data.ava.split is 'official' but {cfg.root} lacks "
                           f"{' or '.join(LISTS.values())}; add the lists or set split: seeded")
    known = set(ids)
    if cfg.split == "official" or (cfg.split == "auto" and have):
        listed = {s: read_jpgl(p) for s, p in lists.items()}
        both = sorted(set(listed["train"]) & set(listed["test"]))
        if both:
            raise DatasetError(f"image ids {both[:5]} are in both {LISTS['train']} and "
                               f"{LISTS['test']}")
        split = {i: s for s, members in listed.items() for i in members if i in known}
        no_row = [(i, s) for s, members in listed.items() for i in members if i not in known]
        info = {"source": "official", "lists": LISTS}
        return split, info, no_row
    order = np.random.default_rng(cfg.split_seed).permutation(len(ids))
    n_test = min(max(1, round(cfg.test_fraction * len(ids))), len(ids) - 1)
    test = {ids[k] for k in order[:n_test]}
    split = {i: "test" if i in test else "train" for i in ids}
    info = {"source": "seeded", "seed": cfg.split_seed, "test_fraction": cfg.test_fraction}
    return split, info, []


def image_path(root: Path, image_id: int) -> Path:
    return root / "images" / f"{image_id}.jpg"


def unlabeled_files(root: Path, ids: set[int]) -> list[str]:
    """Files under images/ that no AVA.txt row names."""
    folder = root / "images"
    if not folder.is_dir():
        return []
    return [str(p) for p in sorted(folder.iterdir())
            if not (p.suffix == ".jpg" and p.stem.isdigit() and int(p.stem) in ids)]


def prepare_configured(params: dict[str, Any], write_dir: Path, out_dir: Path) -> Prepared:
    """:func:`prepare` as params.yaml's ``data.ava`` and ``data.check`` say."""
    check = params["data"]["check"]
    return prepare(AvaConfig.from_params(params["data"]["ava"]), write_dir, out_dir,
                   check["workers"], check["convert_quality"])


def prepare(cfg: AvaConfig, write_dir: Path, out_dir: Path, workers: int,
            quality: int) -> Prepared:
    """Manifests of both splits; converted copies are written under ``write_dir`` and referenced
    under ``out_dir`` (the same folder once the caller renames it into place)."""
    check_root(cfg.root)
    table = parse_ava_txt(cfg.root / "AVA.txt")
    duplicate = table["image_id"].duplicated().to_numpy()
    ids = table.loc[~duplicate, "image_id"].tolist()
    split_of, split_info, no_row = choose_split(ids, cfg)
    stats = vote_stats(table[VOTE_COLUMNS].to_numpy())
    table["split"] = table["image_id"].map(split_of)
    report: list[tuple[str, str, str, str, str]] = []
    manifests, splits = {}, {}
    for split in SPLITS:
        part = table.index[table["split"] == split].tolist()
        paths = [str(image_path(cfg.root, int(table.at[k, "image_id"]))) for k in part]
        pre = {}  # rows dropped before any image is read
        root = cfg.root.resolve()
        for k, path in zip(part, paths):
            real = Path(path).resolve()
            if not real.is_relative_to(root):
                pre[k] = FileCheck(path, OUTSIDE, DROP, f"a link to {real}, outside "
                                   f"data.ava.root: not read")
            elif duplicate[k]:
                pre[k] = FileCheck(path, DUPLICATE, DROP, f"AVA.txt row {table.at[k, 'row']} "
                                   f"repeats image id {table.at[k, 'image_id']}")
            elif stats.at[k, "votes"] == 0:
                pre[k] = FileCheck(path, NO_VOTES, DROP, f"AVA.txt row {table.at[k, 'row']} "
                                   f"has no votes")
        todo = [(k, p) for k, p in zip(part, paths) if k not in pre]
        jobs = [CheckJob(p, str(write_dir / CONVERTED_DIR / split / Path(p).name), quality)
                for _, p in todo]
        checked = dict(zip([k for k, _ in todo], examine_all(jobs, workers, f"check {split}"),
                           strict=True))
        results = [pre.get(k) or checked[k] for k in part]
        rows = []
        for k, result in zip(part, results):
            path = result.path
            if result.action == DROP:
                report.append((path, split, result.verdict, DROP, result.detail))
                continue
            if result.action == CONVERT:
                path = str(out_dir / CONVERTED_DIR / split / Path(path).name)
                report.append((result.path, split, result.verdict, CONVERT,
                               f"converted to {path}; {result.detail}"))
            rows.append([path, int(table.at[k, "image_id"]), result.width, result.height,
                         *stats.loc[k].tolist()])
        frame = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
        manifests[split] = frame.astype({"votes": "int64"})
        splits[split] = split_summary(results)
        if not rows:
            raise DatasetError(f"AVA {split}: none of {len(part)} rows is usable "
                               f"({splits[split]['dropped_by_reason']})")
    ignored = [(str(image_path(cfg.root, i)), s, NO_ROW, f"listed in {LISTS[s]} but not in AVA.txt")
               for i, s in no_row]
    ignored += [(str(image_path(cfg.root, int(r.image_id))), "", NOT_IN_SPLIT,
                 f"AVA.txt row {r.row} is in neither split list")
                for r in table[table["split"].isna() & ~duplicate].itertuples()]
    ignored += [(p, "", UNLABELED, "no AVA.txt row for this file")
                for p in unlabeled_files(cfg.root, set(ids))]
    report += [(path, split, verdict, IGNORE, detail) for path, split, verdict, detail in ignored]
    log_summary("ava", splits)
    if ignored:
        log.warning("%d entries found but not used (listed in the report)", len(ignored))
    summary = {
        "dataset": "ava", "rows": len(table), "split": split_info, "splits": splits,
        "total": {k: sum(s[k] for s in splits.values())
                  for k in ("source", "kept", "converted", "dropped")},
        "ignored": dict(sorted(Counter(v for _, _, v, _ in ignored).items())),
    }
    assigned = table[table["split"].notna() & ~duplicate]
    split_frame = assigned[["image_id", "split"]].reset_index(drop=True)
    return Prepared(manifests, {"split": split_frame},
                    pd.DataFrame(report, columns=REPORT_COLUMNS), summary)
