"""ImageNet ILSVRC2012 from its official archives: checksums, devkit labels, one extraction.

The archives, as distributed:

- ``ILSVRC2012_img_train.tar``: one ``<WNID>.tar`` per class, each holding ``<WNID>_<n>.JPEG``;
- ``ILSVRC2012_img_val.tar``: flat, ``ILSVRC2012_val_00000001.JPEG`` ... ``_00050000.JPEG``;
- ``ILSVRC2012_devkit_t12.tar.gz``: ``ILSVRC2012_devkit_t12/data/meta.mat`` (the ``synsets``
  struct array) and ``data/ILSVRC2012_validation_ground_truth.txt`` (one ILSVRC2012_ID per line,
  line k for val image k).

The archives' names and published MD5s are torchvision's (``ARCHIVE_META``). Why not
torchvision's ``parse_devkit_archive`` / ``parse_train_archive`` / ``parse_val_archive``:
they check the published MD5 on every call (hashing 150 GB, and refusing any other copy), write
``meta.bin`` and the extracted tree into the directory holding the archives (this stage's input,
often read-only), and label val images by position in a sorted listing (one missing file shifts
every later label). Their meta.mat parser is a closure that cannot be called alone, so
:func:`parse_devkit` reads the devkit the same way (same ``loadmat(..., squeeze_me=True)``, the
leaf synsets, i.e. ``num_children == 0``, ILSVRC2012_ID -> WNID; the tests check it agrees with
torchvision's on the same devkit), while here checksums are optional, per-class tars are streamed
(never written to disk), val files are labelled by their number, and the tree is extracted once
to ``data.imagenet.extract_to`` (outside the DVC cache, not a DVC output) and reused while the
archives are unchanged (size and mtime, recorded in ``.extracted.json``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import shutil
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from torchvision.datasets.imagenet import ARCHIVE_META
from tqdm import tqdm

from pipeline.core.errors import DatasetError
from pipeline.core.io import read_json, write_json

log = logging.getLogger(__name__)

#: Archive role -> (file name, published MD5): torchvision's own table of the official archives.
ARCHIVES: dict[str, tuple[str, str]] = ARCHIVE_META
#: The official ILSVRC2012 counts.
OFFICIAL = {"classes": 1000, "train": 1_281_167, "val": 50_000}
META_MAT = "data/meta.mat"
GROUND_TRUTH = "data/ILSVRC2012_validation_ground_truth.txt"
MARKER = ".extracted.json"
UNLABELED_DIR = "val_unlabeled"
VAL_NAME = re.compile(r"^ILSVRC2012_val_(\d{8})\.JPEG$")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
#: The largest member extracted as an image: real ILSVRC2012 JPEGs average 110 KB and stay in
#: the low megabytes, so 64 MiB is far above any of them and far below what a hostile header
#: could make the extraction write. A per-class tar of the train archive may be larger.
MAX_IMAGE_BYTES = 64 * 2**20
MAX_CLASS_TAR_BYTES = 16 * 2**30
#: Report verdict of a member that is not extracted (tests/test_imagenet_data.py builds each).
REFUSED = "refused"


@dataclass(frozen=True)
class Devkit:
    """Labels from the devkit: leaf synsets and the val ground truth."""

    idx_to_wnid: dict[int, str]
    wnid_to_words: dict[str, str]
    val_ids: tuple[int, ...]  # ILSVRC2012_ID of val image k at index k - 1

    def val_wnid(self, number: int) -> str | None:
        """WNID of ``ILSVRC2012_val_<number>.JPEG``; None when the ground truth has no line."""
        if 1 <= number <= len(self.val_ids):
            return self.idx_to_wnid[self.val_ids[number - 1]]
        return None


def archive_paths(root: Path) -> dict[str, Path]:
    """Role -> path of each official archive under ``root``."""
    return {role: root / name for role, (name, _) in ARCHIVES.items()}


def missing_archives(root: Path) -> list[str]:
    """Names of the official archives absent from ``root``."""
    return [p.name for p in archive_paths(root).values() if not p.is_file()]


def md5_of(path: Path, chunk: int = 1 << 23) -> str:
    """MD5 of a file, with a progress bar (150 GB take a while)."""
    digest = hashlib.md5()
    with path.open("rb") as fh, tqdm(total=path.stat().st_size, desc=f"md5 {path.name}",
                                     unit="B", unit_scale=True, mininterval=2) as bar:
        while block := fh.read(chunk):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def _member(tar: tarfile.TarFile, suffix: str, archive: Path) -> bytes:
    """Bytes of the one member whose name ends with ``suffix``."""
    for member in tar.getmembers():
        if member.isfile() and member.name.endswith(suffix):
            handle = tar.extractfile(member)
            assert handle is not None
            return handle.read()
    raise DatasetError(f"{archive}: no '{suffix}' inside; is this ILSVRC2012_devkit_t12.tar.gz?")


def _text(value: Any) -> str:
    """A MATLAB string field as str (loadmat gives str, or an empty array for '')."""
    return value if isinstance(value, str) else ""


def parse_devkit(path: Path) -> Devkit:
    """Leaf synsets (ILSVRC2012_ID -> WNID, words) and val ground truth from the devkit."""
    from scipy.io import loadmat  # only the archive layout needs scipy

    try:
        with tarfile.open(path, "r:*") as tar:
            meta = _member(tar, META_MAT, path)
            truth = _member(tar, GROUND_TRUTH, path)
        synsets = loadmat(io.BytesIO(meta), squeeze_me=True)["synsets"]
    except (tarfile.TarError, OSError, KeyError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read the devkit ({exc})") from exc
    leaves = [s for s in synsets.ravel() if int(s["num_children"]) == 0]
    idx_to_wnid = {int(s["ILSVRC2012_ID"]): _text(s["WNID"]) for s in leaves}
    wnid_to_words = {_text(s["WNID"]): _text(s["words"]) for s in leaves}
    val_ids = []
    for number, line in enumerate(truth.decode().splitlines(), start=1):
        try:
            val_ids.append(int(line))
        except ValueError:
            raise DatasetError(f"{path}: {GROUND_TRUTH} line {number} is {line!r}, not an "
                               f"ILSVRC2012_ID") from None
    unknown = sorted(set(val_ids) - set(idx_to_wnid))
    if unknown:
        raise DatasetError(f"{path}: the val ground truth uses ILSVRC2012_IDs {unknown[:5]} that "
                           f"are not leaf synsets of {META_MAT}")
    return Devkit(idx_to_wnid, wnid_to_words, tuple(val_ids))


def _identity(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _identities(archives: dict[str, Any]) -> dict[str, Any]:
    """Name -> (size, mtime) of recorded archives, the key for reusing an extraction."""
    return {name: (a["size"], a["mtime_ns"]) for name, a in archives.items()}


def read_marker(dest: Path) -> dict[str, Any] | None:
    """The record of a finished extraction in ``dest``, or None."""
    marker = dest / MARKER
    return read_json(marker) if marker.is_file() else None


def verify_checksums(paths: dict[str, Path], marker: dict[str, Any] | None) -> dict[str, str]:
    """MD5 of each archive against the published one (reusing a hash recorded for the same
    size and mtime); DatasetError naming the archive on a mismatch."""
    known = (marker or {}).get("archives", {})
    found = {}
    for role, path in paths.items():
        name, expected = ARCHIVES[role]
        cached = known.get(name, {})
        same = {k: cached.get(k) for k in ("size", "mtime_ns")} == _identity(path)
        found[name] = cached["md5"] if same and "md5" in cached else md5_of(path)
        if found[name] != expected:
            raise DatasetError(f"{path}: MD5 {found[name]} differs from the published {expected}; "
                               f"the archive is damaged or not the official ILSVRC2012 one "
                               f"(re-download it, or set data.imagenet.verify_md5: false for "
                               f"another copy)")
        log.info("%s: MD5 matches the published %s", name, expected)
    return found


def _safe_name(name: str, archive: Path) -> str:
    base = PurePosixPath(name).name
    if not SAFE_NAME.match(base):
        raise DatasetError(f"{archive}: member {name!r} has an unexpected name")
    return base


def refusal(member: tarfile.TarInfo, limit: int | None = None) -> str | None:
    """Why ``member`` is not extracted, or None for a plain file to extract (at most ``limit``
    bytes, default :data:`MAX_IMAGE_BYTES`). Directories are skipped without a reason (they
    hold nothing)."""
    limit = limit or MAX_IMAGE_BYTES
    if member.issym() or member.islnk():
        kind = "symbolic" if member.issym() else "hard"
        return f"a {kind} link (to {member.linkname!r}): links are not followed"
    if member.ischr() or member.isblk() or member.isfifo():
        return "a device or FIFO, not a file"
    if not member.isfile():
        return None if member.isdir() else f"not a regular file (tar type {member.type!r})"
    path = PurePosixPath(member.name)
    if path.is_absolute():
        return "an absolute path"
    if ".." in path.parts:
        return "a path with '..'"
    if member.sparse is not None:
        return "a sparse file (it expands beyond its stored size)"
    if member.size > limit:
        return f"{member.size:,} bytes, above the limit of {limit // 2**20:,} MiB"
    return None


@dataclass
class Extraction:
    """What one archive's extraction wrote and refused (report rows: path, split, reason)."""

    archive: Path
    split: str
    count: int = 0
    refused: list[tuple[str, str, str]] | None = None

    def keep(self, member: tarfile.TarInfo, where: str = "", limit: int | None = None) -> bool:
        """True to extract ``member``; a refused one is recorded with its reason."""
        reason = refusal(member, limit)
        if reason is None:
            return member.isfile()
        self.refused = self.refused or []
        self.refused.append((f"{self.archive}:{where}{member.name}", self.split, reason))
        log.warning("%s: member %s%r not extracted: %s", self.archive, where, member.name,
                    reason)
        return False


@contextlib.contextmanager
def reading(archive: Path, member: list[str]) -> Iterator[None]:
    """An archive cut short or damaged as one clear error naming it and the member being
    read (``member[0]``, kept current by the caller)."""
    try:
        yield
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        at = f" at member {member[0]!r}" if member[0] else ""
        raise DatasetError(f"{archive}: the archive ends early or is damaged{at} ({exc}); "
                           f"re-download it (its size and MD5 are in torchvision's "
                           f"ARCHIVE_META)") from None


def _copy(handle: BinaryIO | None, dst: Path) -> None:
    assert handle is not None
    with dst.open("wb") as out:
        shutil.copyfileobj(handle, out, 1 << 20)


@contextlib.contextmanager
def streaming(archive: Path, current: list[str], desc: str
              ) -> Iterator[tuple[tarfile.TarFile, tqdm]]:
    """``archive`` opened as a stream, with a progress bar in bytes; an archive cut short or
    damaged, anywhere in the block, is one clear error (:func:`reading`)."""
    with reading(archive, current), tarfile.open(archive, "r|") as tar, tqdm(
            total=archive.stat().st_size, desc=desc, unit="B", unit_scale=True,
            mininterval=2) as bar:
        yield tar, bar


def kept_members(tar: tarfile.TarFile, done: Extraction, current: list[str], bar: tqdm,
                 limit: int | None = None) -> Iterator[tuple[tarfile.TarInfo, str]]:
    """Each member of a streamed ``tar`` to extract, with its checked base name; refused
    ones are recorded in ``done``. ``current[0]`` names the member being read, and the bar
    moves on by a member's size once the caller is done with it."""
    for member in tar:
        current[0] = member.name
        if done.keep(member, limit=limit):
            yield member, _safe_name(member.name, done.archive)
            bar.update(member.size)


def extract_train(archive: Path, out: Path) -> Extraction:
    """Stream the per-class tars into ``out/<wnid>/``; what was written and refused."""
    done, current = Extraction(archive, "train"), [""]
    with streaming(archive, current, "extract train") as (outer, bar):
        for member, name in kept_members(outer, done, current, bar, MAX_CLASS_TAR_BYTES):
            if not name.endswith(".tar"):
                raise DatasetError(f"{archive}: member {member.name!r} is not a per-class "
                                   f"<WNID>.tar; is this ILSVRC2012_img_train.tar?")
            class_dir = out / name[: -len(".tar")]
            class_dir.mkdir(parents=True, exist_ok=True)
            with tarfile.open(fileobj=outer.extractfile(member), mode="r|") as inner:
                for image in inner:
                    current[0] = f"{member.name}/{image.name}"
                    if done.keep(image, where=f"{member.name}/"):
                        _copy(inner.extractfile(image), class_dir / _safe_name(image.name, archive))
                        done.count += 1
    return done


def extract_val(archive: Path, devkit: Devkit, out: Path, unlabeled: Path) -> Extraction:
    """Val images into ``out/<wnid>/`` by ground truth (file k -> line k); files the ground truth
    does not label go to ``unlabeled``. What was written and refused."""
    done, current = Extraction(archive, "val"), [""]
    with streaming(archive, current, "extract val") as (tar, bar):
        for member, name in kept_members(tar, done, current, bar):
            match = VAL_NAME.match(name)
            wnid = devkit.val_wnid(int(match[1])) if match else None
            target = out / wnid if wnid else unlabeled
            target.mkdir(parents=True, exist_ok=True)
            _copy(tar.extractfile(member), target / name)
            done.count += 1
    return done


def ensure_extracted(root: Path, dest: Path, verify_md5: bool) -> tuple[Devkit, dict[str, Any]]:
    """Check the archives under ``root`` and extract them to ``dest`` unless a finished
    extraction of the same archives is there. Returns the devkit and a record for the summary."""
    missing = missing_archives(root)
    if missing:
        raise DatasetError(f"{root}: missing {', '.join(missing)}; the archive layout needs all of "
                           f"{', '.join(n for n, _ in ARCHIVES.values())} in data.imagenet.root")
    paths = archive_paths(root)
    marker = read_marker(dest)
    if dest.exists() and marker is None:
        raise DatasetError(f"data.imagenet.extract_to = {str(dest)!r} exists but has no {MARKER}: "
                           f"it was not written by prepare-imagenet; remove it or choose another "
                           f"folder")
    md5s = verify_checksums(paths, marker) if verify_md5 else {}
    devkit = parse_devkit(paths["devkit"])
    archives = {p.name: {**_identity(p), **({"md5": md5s[p.name]} if p.name in md5s else {})}
                for p in paths.values()}
    if marker is not None and _identities(marker["archives"]) == _identities(archives):
        log.info("reusing the extraction in %s (archives unchanged)", dest)
        if md5s and any("md5" not in a for a in marker["archives"].values()):
            write_json(dest / MARKER, {**marker, "archives": archives})
    else:
        _extract(paths, devkit, dest, archives)
    return devkit, {"verified_md5": bool(md5s), "md5": md5s, "extracted_to": str(dest)}


def _extract(paths: dict[str, Path], devkit: Devkit, dest: Path,
             archives: dict[str, Any]) -> None:
    """Extract into a sibling, then rename: an interrupted extraction never looks finished."""
    partial = dest.parent / f".{dest.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    # what will be written is at most the archives' size: every member written is stored in
    # them byte for byte (sparse members, which would expand, are refused)
    needed = paths["train"].stat().st_size + paths["val"].stat().st_size
    free = shutil.disk_usage(partial).free
    if free < needed:
        shutil.rmtree(partial)
        raise DatasetError(f"extracting needs about {needed / 2**30:.1f} GiB but "
                           f"{dest.parent} has {free / 2**30:.1f} GiB free; free space there or "
                           f"set data.imagenet.extract_to to a larger disk")
    log.info("extracting the archives to %s (once; reused while they are unchanged)", dest)
    done = [extract_train(paths["train"], partial / "train"),
            extract_val(paths["val"], devkit, partial / "val", partial / UNLABELED_DIR)]
    counts = {d.split: d.count for d in done}
    refused = [list(row) for d in done for row in d.refused or []]
    (partial / "val").mkdir(exist_ok=True)
    write_json(partial / MARKER, {"archives": archives, "files": counts, "refused": refused})
    if dest.exists():  # an older extraction of other archives (it has our marker)
        shutil.rmtree(dest)
    os.replace(partial, dest)
    log.info("extracted %d train and %d val files; %d members refused (listed in the report)",
             counts["train"], counts["val"], len(refused))
