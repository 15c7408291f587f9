"""Tiny datasets in the exact on-disk formats of ImageNet ILSVRC2012 and AVA, with every kind of
broken file the real ones hold (and a few more).

ImageNet: a nested train tar of per-class ``<WNID>.tar``, a flat val tar, and a devkit
``.tar.gz`` whose ``data/meta.mat`` is the ``synsets`` struct array torchvision parses (fields in
the real order, leaf and non-leaf synsets) plus ``data/ILSVRC2012_validation_ground_truth.txt``;
or the same images as an extracted ``train/<wnid>/``, ``val/<wnid>/`` tree. AVA: ``AVA.txt``
(15 columns, tag-0 entries), ``images/<id>.jpg`` and the ``.jpgl`` split lists.
"""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

#: Broken-file kind -> the verdict pipeline.data.checks must give it.
BROKEN = {
    "empty": "empty",
    "truncated": "truncated",
    "random_bytes": "undecodable",
    "png": "not_jpeg",
    "cmyk": "cmyk",
    "grayscale": "grayscale",
    "exif_rotated": "exif_rotated",
}
CONVERTED = {"png", "cmyk", "grayscale", "exif_rotated"}


def pixels(seed: int, width: int, height: int) -> np.ndarray:
    """A smooth random RGB image (uint8, height x width x 3), distinct per seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(3, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR))


def image_bytes(kind: str, seed: int, width: int = 36, height: int = 28) -> bytes:
    """Bytes of one file of ``kind`` ('good' or a key of BROKEN), named .JPEG by the caller."""
    img = Image.fromarray(pixels(seed, width, height))
    buf = io.BytesIO()
    if kind == "empty":
        return b""
    if kind == "random_bytes":
        return np.random.default_rng(seed).integers(0, 256, 600, dtype=np.uint8).tobytes()
    if kind == "png":
        img.save(buf, format="PNG")
    elif kind == "cmyk":
        img.convert("CMYK").save(buf, format="JPEG", quality=90)
    elif kind == "grayscale":
        img.convert("L").save(buf, format="JPEG", quality=90)
    elif kind == "exif_rotated":
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees clockwise to display: width and height swap
        img.save(buf, format="JPEG", quality=90, exif=exif.tobytes())
    else:
        img.save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    return data[: len(data) * 2 // 3] if kind == "truncated" else data


def loaded_size(kind: str, width: int = 36, height: int = 28) -> tuple[int, int]:
    """(width, height) a loader sees for a kept file of ``kind``."""
    return (height, width) if kind == "exif_rotated" else (width, height)


# ---------------------------------------------------------------------------------- ImageNet

#: ILSVRC2012_ID -> (wnid, words); ID order differs from sorted-wnid order on purpose.
SYNSETS = {1: ("n02105855", "Shetland sheepdog, Shetland sheep dog"),
           2: ("n01440764", "tench, Tinca tinca"),
           3: ("n01443537", "goldfish, Carassius auratus")}
WNIDS = sorted(w for w, _ in SYNSETS.values())  # label = index here


@dataclass
class ImagenetFixture:
    """Where the fixture is and what a correct prepare must produce."""

    root: Path
    # split -> file name -> (wnid, width, height) / verdict
    kept: dict[str, dict[str, tuple[str, int, int]]] = field(default_factory=dict)
    dropped: dict[str, dict[str, str]] = field(default_factory=dict)
    converted: dict[str, dict[str, str]] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)  # name -> verdict
    source: dict[str, int] = field(default_factory=dict)


def imagenet_files() -> tuple[list[tuple[str, str, str, str]], list[int], str]:
    """(split, wnid, name, kind) of every image, the val ground truth (one ILSVRC2012_ID per val
    number, the last with no file) and the name of a val file the ground truth misses."""
    files = []
    broken = iter(BROKEN)
    for c, wnid in enumerate(WNIDS):
        for i in range(3):
            files.append(("train", wnid, f"{wnid}_{100 + i}.JPEG", "good"))
        for _ in range(3 if c < 2 else 1):  # the seven broken kinds over the train classes
            kind = next(broken)
            files.append(("train", wnid, f"{wnid}_{200 + len(files)}.JPEG", kind))
    truth = [2, 1, 3, 1, 2, 3, 2]  # seven lines; val image 7 has no file (missing)
    id_to_wnid = {i: w for i, (w, _) in SYNSETS.items()}
    for number, ilsvrc_id in enumerate(truth[:6], start=1):
        kind = "cmyk" if number == 4 else "truncated" if number == 5 else "good"
        files.append(("val", id_to_wnid[ilsvrc_id], f"ILSVRC2012_val_{number:08d}.JPEG", kind))
    return files, truth, "ILSVRC2012_val_00000008.JPEG"


def _expectation(root: Path) -> ImagenetFixture:
    files, truth, unlabeled = imagenet_files()
    fx = ImagenetFixture(root, {s: {} for s in ("train", "val")}, {s: {} for s in ("train", "val")},
                         {s: {} for s in ("train", "val")}, {unlabeled: "unlabeled"})
    for seed, (split, wnid, name, kind) in enumerate(files):
        if kind in BROKEN and kind not in CONVERTED:
            fx.dropped[split][name] = BROKEN[kind]
            continue
        if kind in CONVERTED:
            fx.converted[split][name] = BROKEN[kind]
        fx.kept[split][name] = (wnid, *loaded_size(kind))
    fx.dropped["val"][f"ILSVRC2012_val_{len(truth):08d}.JPEG"] = "missing"
    fx.source = {"train": sum(f[0] == "train" for f in files), "val": len(truth)}
    return fx


def _tar_bytes(members: list[tuple[str, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_300_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def meta_mat_bytes() -> bytes:
    """``data/meta.mat``: the ``synsets`` struct array (N x 1) in the devkit's field order."""
    from scipy.io import savemat

    fields = ["ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children",
              "wordnet_height", "num_train_images"]
    leaves = [(i, w, words, f"gloss of {w}", 0, np.zeros((1, 0)), 0, 3)
              for i, (w, words) in SYNSETS.items()]
    inner = [(1001, "n01317541", "domestic animal", "gloss", 1, np.array([[1]]), 1, 0),
             (1002, "n00015388", "animal, animate being", "gloss", 2, np.array([[2, 3]]), 2, 0)]
    rows = leaves + inner
    synsets = np.zeros((len(rows), 1), dtype=[(f, "O") for f in fields])
    for k, row in enumerate(rows):
        synsets[k, 0] = row
    buf = io.BytesIO()
    savemat(buf, {"synsets": synsets})
    return buf.getvalue()


def devkit_bytes(truth: list[int]) -> bytes:
    """``ILSVRC2012_devkit_t12.tar.gz`` with meta.mat and the val ground truth."""
    top = "ILSVRC2012_devkit_t12"
    return _tar_bytes([(f"{top}/COPYING", b"fixture\n"),
                       (f"{top}/data/meta.mat", meta_mat_bytes()),
                       (f"{top}/data/ILSVRC2012_validation_ground_truth.txt",
                        "".join(f"{i}\n" for i in truth).encode())], mode="w:gz")


def make_imagenet_archives(root: Path) -> ImagenetFixture:
    """The three official archives in ``root``."""
    files, truth, unlabeled = imagenet_files()
    root.mkdir(parents=True, exist_ok=True)
    per_class = {w: [] for w in WNIDS}
    val = []
    for seed, (split, wnid, name, kind) in enumerate(files):
        data = image_bytes(kind, seed)
        (per_class[wnid] if split == "train" else val).append((name, data))
    outer = [(f"{w}.tar", _tar_bytes(members)) for w, members in per_class.items()]
    (root / "ILSVRC2012_img_train.tar").write_bytes(_tar_bytes(outer))
    val.append((unlabeled, image_bytes("good", 999)))
    (root / "ILSVRC2012_img_val.tar").write_bytes(_tar_bytes(sorted(val)))
    (root / "ILSVRC2012_devkit_t12.tar.gz").write_bytes(devkit_bytes(truth))
    return _expectation(root)


def make_imagenet_tree(root: Path) -> ImagenetFixture:
    """The same images as an extracted tree; the missing val file is a dangling link."""
    files, truth, _ = imagenet_files()
    for seed, (split, wnid, name, kind) in enumerate(files):
        path = root / split / wnid / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image_bytes(kind, seed))
    missing = root / "val" / SYNSETS[truth[-1]][0] / f"ILSVRC2012_val_{len(truth):08d}.JPEG"
    os.symlink(root / "nowhere.JPEG", missing)
    (root / "train" / WNIDS[0] / "notes.txt").write_text("not an image\n")
    fx = _expectation(root)
    fx.ignored = {"notes.txt": "not_image"}
    return fx


# ---------------------------------------------------------------------------------------- AVA

@dataclass
class AvaFixture:
    """Where the fixture is and what a correct prepare must produce."""

    root: Path
    votes: dict[int, list[int]]  # image id -> ten vote counts
    split: dict[int, str]  # image id -> official split
    kept: dict[str, dict[int, tuple[int, int]]]  # split -> id -> (w, h)
    dropped: dict[str, dict[int, str]]  # split -> id -> verdict
    converted: dict[str, dict[int, str]]
    unlabeled: list[int]  # files without a row


def make_ava(root: Path, official_split: bool = True) -> AvaFixture:
    """AVA.txt, images/<id>.jpg (broken kinds included) and the generic .jpgl lists."""
    rng = np.random.default_rng(7)
    ids = [953619, 953958, 954184, 954113, 953980, 954175, 953349, 953645, 953897, 953841,
           955053, 954972, 17, 4206]
    kinds = ["good"] * 7 + ["truncated", "random_bytes", "png", "grayscale", "exif_rotated",
                            "cmyk", "empty"]
    no_file = 600001  # a row whose image is not there
    ids_all = ids + [no_file]
    kinds.append("missing")
    split = {i: ("test" if k % 4 == 3 else "train") for k, i in enumerate(ids_all)}
    votes = {i: rng.integers(0, 40, 10).tolist() for i in ids_all}
    (root / "images").mkdir(parents=True)
    lines = []
    for row, (image_id, kind) in enumerate(zip(ids_all, kinds), start=1):
        tag1, tag2 = (0, 0) if row % 5 == 0 else (int(rng.integers(1, 66)),
                                                  0 if row % 3 == 0 else int(rng.integers(1, 66)))
        lines.append(" ".join(map(str, [row, image_id, *votes[image_id], tag1, tag2,
                                        int(rng.integers(1, 1400))])))
        if kind != "missing":
            (root / "images" / f"{image_id}.jpg").write_bytes(image_bytes(kind, image_id))
    (root / "AVA.txt").write_text("\n".join(lines) + "\n")
    unlabeled = [777777]
    (root / "images" / "777777.jpg").write_bytes(image_bytes("good", 3))
    if official_split:
        lists = root / "aesthetics_image_lists"
        lists.mkdir()
        for name, part in (("generic_ls_train.jpgl", "train"), ("generic_test.jpgl", "test")):
            (lists / name).write_text("".join(f"{i}\n" for i in ids_all if split[i] == part))
    kept, dropped, converted = ({s: {} for s in ("train", "test")} for _ in range(3))
    for image_id, kind in zip(ids_all, kinds):
        part = split[image_id]
        if kind == "missing":
            dropped[part][image_id] = "missing"
        elif kind in BROKEN and kind not in CONVERTED:
            dropped[part][image_id] = BROKEN[kind]
        else:
            kept[part][image_id] = loaded_size(kind)
            if kind in CONVERTED:
                converted[part][image_id] = BROKEN[kind]
    return AvaFixture(root, votes, split, kept, dropped, converted, unlabeled)


# ------------------------------------------------------------------------------ stage commands

@dataclass
class StageRun:
    """A ``python -m pipeline <stage>`` subprocess started in the background.

    Each stage process spends most of its time importing timm (params validation); tests start
    theirs together and wait for them when they need the result.
    """

    proc: object
    args: tuple[str, ...]
    _result: tuple[int, str, str] | None = None

    def result(self) -> tuple[int, str, str]:
        """(exit status, stdout, stderr), waiting for the process."""
        if self._result is None:
            out, err = self.proc.communicate(timeout=300)
            self._result = (self.proc.returncode, out, err)
        return self._result


def start_stage(params_path: Path, params: dict, *args: str) -> StageRun:
    """Write ``params`` to ``params_path`` and start ``python -m pipeline <args> --params``."""
    import subprocess
    import sys

    import yaml

    from tests.conftest import ROOT

    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", *args, "--params",
                             str(params_path)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    return StageRun(proc, args)


def run_in_process(params_path: Path, params: dict, *args: str) -> int:
    """``pipeline.cli.main`` on ``args --params params_path`` in this process (what
    ``python -m pipeline`` runs, without a second interpreter's startup); the logging setup the
    CLI installs is undone afterwards."""
    import logging

    import yaml

    from pipeline.cli import main

    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return main([*args, "--params", str(params_path)])
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)


#: Test module name -> function(tmp_path_factory) starting that module's stage subprocesses.
STARTERS: dict[str, object] = {}
_STARTED: dict[str, object] = {}


def background(request, module: str):
    """The stage runs of ``module``. On the first call of a session, the runs of every module
    registered in STARTERS that has tests in this session are started, so that their
    interpreter start-up (mostly importing timm) overlaps with the in-process tests."""
    collected = {item.module.__name__ for item in request.session.items}
    factory = request.getfixturevalue("tmp_path_factory")
    for name, starter in STARTERS.items():
        if name not in _STARTED and (name in collected or name == module):
            _STARTED[name] = starter(factory)
    return _STARTED[module]
