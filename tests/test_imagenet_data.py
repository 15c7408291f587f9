"""ImageNet from the official archives or an extracted tree: labels, checks, report, counts; the
prepare-imagenet and preresize stages end to end."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from pipeline.core.errors import DatasetError
from pipeline.core.manifests import write_manifests
from pipeline.data import archives
from pipeline.data.imagenet import ImagenetConfig, collect, prepare, scan_tree
from pipeline.data.preresize import preresize_dir, target_size
from pipeline.loaders.decoded import read_decoded
from pipeline.loaders.torch_loader import read_rgb
from tests.conftest import deep_merge
from tests.fixtures_data import (STARTERS, SYNSETS, WNIDS, background, image_bytes,
                                 make_imagenet_archives, make_imagenet_tree, run_in_process,
                                 start_stage)


def prepared(cfg: ImagenetConfig, out: Path, workers: int = 1):
    """prepare() into ``out``, manifests written as the stage writes them."""
    out.mkdir(parents=True)
    result = prepare(collect(cfg), out, out, workers, quality=95)
    write_manifests(out, {**result.manifests, **result.tables})
    return result


def check_against(result, fx, out: Path) -> None:
    """Manifests, report and summary agree with what the fixture holds."""
    for split in ("train", "val"):
        frame = result.manifests[split]
        names = [Path(p).name for p in frame["path"]]
        assert sorted(names) == sorted(fx.kept[split]), split
        for name, row in zip(names, frame.itertuples()):
            wnid, width, height = fx.kept[split][name]
            assert (row.wnid, row.label, row.width, row.height) == (
                wnid, WNIDS.index(wnid), width, height), name
            if name in fx.converted[split]:
                assert Path(row.path).is_relative_to(out / "converted" / split)
                with Image.open(row.path) as img:
                    assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (width, height))
            else:
                assert not Path(row.path).is_relative_to(out)
        report = result.report[result.report["split"] == split]
        dropped = report[report["action"] == "drop"]
        assert dict(zip(dropped["path"].map(lambda p: Path(p).name), dropped["verdict"])) == \
            fx.dropped[split]
        converted = report[report["action"] == "convert"]
        assert dict(zip(converted["path"].map(lambda p: Path(p).name), converted["verdict"])) \
            == fx.converted[split]
        counts = result.summary["splits"][split]
        assert counts["source"] == fx.source[split] == counts["kept"] + counts["dropped"]
        assert counts["kept"] == len(frame) and counts["dropped"] == len(fx.dropped[split])
        assert counts["converted"] == len(fx.converted[split])
    ignored = result.report[result.report["action"] == "ignore"]
    assert dict(zip(ignored["path"].map(lambda p: Path(p).name), ignored["verdict"])) == fx.ignored
    assert result.tables["classes"]["wnid"].tolist() == WNIDS


def test_devkit_parsed_as_torchvision_parses_it(tmp_path, monkeypatch):
    """Our devkit reader and torchvision's parse_devkit_archive agree on the same devkit."""
    import torch
    from torchvision.datasets import imagenet as tv

    fx = make_imagenet_archives(tmp_path / "src")
    monkeypatch.setattr(tv, "_verify_archive", lambda *a: None)  # the fixture is not the real one
    tv.parse_devkit_archive(str(fx.root))
    wnid_to_classes, val_wnids = torch.load(fx.root / "meta.bin", weights_only=True)
    devkit = archives.parse_devkit(fx.root / archives.ARCHIVES["devkit"][0])
    assert {w: tuple(words.split(", ")) for w, words in devkit.wnid_to_words.items()} == \
        wnid_to_classes
    assert [devkit.val_wnid(k) for k in range(1, len(val_wnids) + 1)] == val_wnids
    assert devkit.idx_to_wnid == {i: w for i, (w, _) in SYNSETS.items()}  # leaves only


def test_archives(tmp_path):
    fx = make_imagenet_archives(tmp_path / "src")
    cfg = ImagenetConfig(fx.root, "auto", tmp_path / "extracted")
    result = prepared(cfg, tmp_path / "out", workers=2)
    assert result.summary["layout"] == "archives"
    check_against(result, fx, tmp_path / "out")
    # val labels come from the ground truth (file k -> line k), not from directory order
    val = result.manifests["val"]
    number = val["path"].map(lambda p: int(Path(p).stem[-8:]))
    truth = {1: 2, 2: 1, 3: 3, 4: 1, 5: 2, 6: 3}
    assert (val["wnid"] == number.map(lambda k: SYNSETS[truth[k]][0])).all()
    assert not any(Path(p).is_relative_to(fx.root) for p in result.report["path"])  # extracted
    assert not list(fx.root.glob("*/"))  # nothing written next to the archives


def test_tree_gives_the_same_labels(tmp_path):
    tree = make_imagenet_tree(tmp_path / "tree")
    result = prepared(ImagenetConfig(tree.root), tmp_path / "out")
    assert result.summary["layout"] == "tree"
    check_against(result, tree, tmp_path / "out")


def test_extraction_reused_until_the_archives_change(tmp_path):
    fx = make_imagenet_archives(tmp_path / "src")
    cfg = ImagenetConfig(fx.root, "archives", tmp_path / "extracted")
    collect(cfg)
    probe = tmp_path / "extracted" / "train" / WNIDS[0] / "probe.JPEG"
    probe.write_bytes(image_bytes("good", 5))
    assert len(collect(cfg).files["train"]) == 17  # reused: the probe is still there
    devkit = fx.root / archives.ARCHIVES["devkit"][0]
    os.utime(devkit, ns=(0, devkit.stat().st_mtime_ns + 10**9))
    assert len(collect(cfg).files["train"]) == 16 and not probe.exists()  # extracted again


@pytest.mark.parametrize("case, fragment", [
    ("foreign_extract_dir", "was not written by prepare-imagenet"),
    ("extract_inside_root", "is inside data.imagenet.root"),
    ("missing_devkit", "missing ILSVRC2012_devkit_t12.tar.gz"),
    ("neither_layout", "holds neither an extracted tree"),
    ("official_counts", "expect_official is true"),
    ("md5", "differs from the published 1d675b47d978889d74fa0da5fadfb00e"),
])
def test_dataset_errors_say_what_to_change(tmp_path, case, fragment):
    fx = make_imagenet_archives(tmp_path / "src")
    cfg = dict(root=fx.root, layout="auto", extract_to=tmp_path / "extracted")
    if case == "foreign_extract_dir":
        (tmp_path / "extracted").mkdir()
    elif case == "extract_inside_root":
        cfg["extract_to"] = fx.root / "extracted"
    elif case == "missing_devkit":
        (fx.root / archives.ARCHIVES["devkit"][0]).unlink()
        cfg["layout"] = "archives"
    elif case == "neither_layout":
        (fx.root / archives.ARCHIVES["val"][0]).unlink()
    elif case == "official_counts":
        cfg["expect_official"] = True
    elif case == "md5":
        cfg["verify_md5"] = True
    with pytest.raises(DatasetError) as info:
        collect(ImagenetConfig(**cfg))
    assert fragment in str(info.value), str(info.value)
    if case == "official_counts":  # refused before extracting or decoding anything heavy
        assert "train 16 (official 1,281,167)" in str(info.value)


def test_md5_checked_and_remembered(tmp_path, monkeypatch):
    fx = make_imagenet_archives(tmp_path / "src")
    published = {role: (name, archives.md5_of(fx.root / name))
                 for role, (name, _) in archives.ARCHIVES.items()}
    monkeypatch.setattr(archives, "ARCHIVES", published)
    cfg = ImagenetConfig(fx.root, "archives", tmp_path / "extracted", verify_md5=True)
    assert collect(cfg).extra["archives"]["verified_md5"]
    marker = json.loads((tmp_path / "extracted" / archives.MARKER).read_text())
    assert {a["md5"] for a in marker["archives"].values()} == {m for _, m in published.values()}
    monkeypatch.setattr(archives, "md5_of", lambda path: pytest.fail("hashed again"))
    collect(cfg)


def test_scan_tree_still_reads_a_clean_tree(tmp_path):
    for split, n in (("train", 3), ("val", 2)):
        for wnid in WNIDS:
            for i in range(n):
                path = tmp_path / split / wnid / f"{wnid}_{i}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(image_bytes("good", i))
    wnids, manifests = scan_tree(tmp_path)
    assert wnids == WNIDS and len(manifests["train"]) == 9 and len(manifests["val"]) == 6
    assert manifests["val"]["label"].tolist() == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("size, expected", [((400, 300), (400, 300)), ((800, 600), (683, 512)),
                                            ((600, 1200), (512, 1024)), ((512, 513), (512, 513))])
def test_target_size(size, expected):
    assert target_size(*size, 512) == expected


def test_preresize_disabled_passes_manifests_through(tmp_path):
    tree = make_imagenet_tree(tmp_path / "tree")
    prepared(ImagenetConfig(tree.root), tmp_path / "prepared")
    (tmp_path / "copy").mkdir()
    assert preresize_dir(tmp_path / "prepared", tmp_path / "copy", tmp_path / "copy", False, 16,
                         90, 1) == {}
    for name in ("train.csv", "val.csv", "classes.csv"):
        copy, original = tmp_path / "copy" / name, tmp_path / "prepared" / name
        assert copy.read_bytes() == original.read_bytes()
    assert not (tmp_path / "copy" / "images").exists()


# ------------------------------------------------------------------ stages, end to end

def start_runs(tmp_path_factory):
    """python -m pipeline prepare-imagenet on the archives and on a bad layout, started early
    (see fixtures_data.background); the tests await them."""
    import yaml

    from tests.conftest import ROOT

    tmp = tmp_path_factory.mktemp("stages")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    fx = make_imagenet_archives(tmp / "src")
    good = deep_merge(params, {"data": {"imagenet": {"root": str(fx.root),
                                                     "extract_to": str(tmp / "extracted")}}})
    bad = deep_merge(good, {"data": {"imagenet": {"layout": "zip"}}})
    runs = {
        "good": start_stage(tmp / "good.yaml", good, "prepare-imagenet", "--out",
                            str(tmp / "out"), "--report", str(tmp / "results/report.csv"),
                            "--summary", str(tmp / "results/summary.json")),
        "bad": start_stage(tmp / "bad.yaml", bad, "prepare-imagenet", "--out",
                           str(tmp / "bad-out"), "--report", str(tmp / "bad-results/r.csv"),
                           "--summary", str(tmp / "bad-results/s.json")),
    }
    return tmp, fx, params, runs


STARTERS[__name__] = start_runs


@pytest.fixture(scope="module", autouse=True)
def stage_runs(request):
    return background(request, __name__)


def test_prepare_imagenet_stage(stage_runs):
    tmp, fx, _, runs = stage_runs
    code, _, err = runs["good"].result()
    assert code == 0, err
    assert sorted(p.name for p in (tmp / "out").iterdir()) == [
        "classes.csv", "converted", "manifests.json", "train.csv", "val.csv"]
    train = pd.read_csv(tmp / "out" / "train.csv")
    assert list(train.columns[:5]) == ["path", "label", "wnid", "width", "height"]
    assert len(train) == len(fx.kept["train"])
    for path in train["path"]:
        with Image.open(path) as img:
            assert img.mode == "RGB"
    report = pd.read_csv(tmp / "results" / "report.csv")
    assert list(report.columns) == ["path", "split", "verdict", "action", "detail"]
    assert set(report.loc[report["action"] == "drop", "verdict"]) == {
        "empty", "truncated", "undecodable", "missing"}
    summary = json.loads((tmp / "results" / "summary.json").read_text())
    for split, counts in summary["splits"].items():
        assert counts["source"] == counts["kept"] + counts["dropped"] == fx.source[split]
    assert "source 16 = kept 13 (converted 4) + dropped 3" in err  # the counts are logged


def test_prepare_imagenet_stage_refuses_an_unknown_layout(stage_runs):
    tmp, _, _, runs = stage_runs
    code, _, err = runs["bad"].result()
    assert code == 2
    assert "data.imagenet.layout = 'zip'" in err and "auto, tree, archives" in err
    assert "Traceback" not in err
    assert not (tmp / "bad-out").exists() and not (tmp / "bad-results").exists()


@pytest.mark.parametrize("damage", ["missing devkit", "val archive cut short"])
def test_prepare_imagenet_refuses_incomplete_archives(stage_runs, tmp_path, capsys, damage):
    """A missing archive is refused by the params check, before any stage (what `plan` runs);
    one cut short by the stage: exit 2, one message, nothing written either way."""
    _, fx, params, _ = stage_runs
    root = tmp_path / "incomplete"
    shutil.copytree(fx.root, root)
    if damage == "missing devkit":
        (root / archives.ARCHIVES["devkit"][0]).unlink()
        expected = "lacks ILSVRC2012_devkit_t12.tar.gz (missing or empty"
    else:
        val = root / archives.ARCHIVES["val"][0]
        val.write_bytes(val.read_bytes()[:3000])
        expected = "ILSVRC2012_img_val.tar: the archive ends early or is damaged"
    bad = deep_merge(params, {"data": {"imagenet": {"root": str(root), "layout": "archives",
                                                    "extract_to": str(tmp_path / "ext")}}})
    code = run_in_process(tmp_path / "p.yaml", bad, "prepare-imagenet", "--out",
                          str(tmp_path / "out"), "--report", str(tmp_path / "res/r.csv"),
                          "--summary", str(tmp_path / "res/s.json"))
    err = capsys.readouterr().err
    assert code == 2 and expected in err, err
    assert "Traceback" not in err
    assert not any((tmp_path / d).exists() for d in ("out", "res", "ext"))


def test_preresize_stage(stage_runs, tmp_path):
    """Through the CLI entry point in this process (a second interpreter costs ~12 s here)."""
    _, _, params, _ = stage_runs
    prepared(ImagenetConfig(make_imagenet_tree(tmp_path / "tree").root), tmp_path / "prepared")
    small = deep_merge(params, {"preresize": {"enabled": True, "max_short_side": 20}})
    assert run_in_process(tmp_path / "p.yaml", small, "preresize", "--manifests",
                          str(tmp_path / "prepared"), "--out", str(tmp_path / "small")) == 0
    source = pd.read_csv(tmp_path / "prepared" / "train.csv")
    copies = pd.read_csv(tmp_path / "small" / "train.csv")
    assert len(copies) == len(source) and (copies["label"] == source["label"]).all()
    for row in copies.itertuples():
        assert Path(row.path).is_relative_to(tmp_path / "small" / "images" / "train")
        with Image.open(row.path) as img:
            assert img.size == (row.width, row.height) and min(img.size) == 20
            assert (img.format, img.mode) == ("JPEG", "RGB")
    assert (tmp_path / "small" / "classes.csv").read_bytes() == \
        (tmp_path / "prepared" / "classes.csv").read_bytes()
    # each split decoded once, from the copies (read while the folder was still being written)
    for split in ("train", "val"):
        frame = pd.read_csv(tmp_path / "small" / f"{split}.csv")
        images = read_decoded(tmp_path / "small", split, frame)
        assert images is not None and len(images) == len(frame)
        assert all(torch.equal(images.image(i), read_rgb(p)) for i, p in enumerate(frame["path"]))
    never = deep_merge(small, {"loader": {"decoded_max_mb": 0}})
    assert run_in_process(tmp_path / "p.yaml", never, "preresize", "--manifests",
                          str(tmp_path / "prepared"), "--out", str(tmp_path / "small")) == 0
    assert not list((tmp_path / "small").glob("*.decoded.npz"))


def test_prepare_stage_of_a_tree_decodes_it(stage_runs, tmp_path):
    """``--tree`` (the second regime's set): that tree, not data.imagenet's root, prepared
    like any tree and each small split decoded once beside its manifest (no preresize stage
    follows it)."""
    _, _, params, _ = stage_runs
    tree = make_imagenet_tree(tmp_path / "tree").root
    out = tmp_path / "out"
    assert run_in_process(tmp_path / "p.yaml", params, "prepare-imagenet", "--tree", str(tree),
                          "--out", str(out), "--report", str(tmp_path / "r.csv"),
                          "--summary", str(tmp_path / "s.json")) == 0
    expected = prepared(ImagenetConfig(tree, "tree"), tmp_path / "reference")
    for split in ("train", "val"):
        frame = pd.read_csv(out / f"{split}.csv")
        assert frame["label"].tolist() == expected.manifests[split]["label"].tolist()
        # the tree's files, or the converted copies of those that needed it
        assert all(Path(p).is_relative_to(tree) or Path(p).is_relative_to(out / "converted")
                   for p in frame["path"])
        assert any(Path(p).is_relative_to(tree) for p in frame["path"])
        images = read_decoded(out, split, frame)
        assert images is not None and len(images) == len(frame)
        assert all(torch.equal(images.image(i), read_rgb(p)) for i, p in enumerate(frame["path"]))


def hostile_member(tar: tarfile.TarFile, name: str, kind: str, data: bytes = b"x" * 64) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 1_300_000_000
    if kind == "file":
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        return
    info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                 "chardev": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[kind]
    info.linkname = {"symlink": "/etc/passwd", "hardlink": "ILSVRC2012_val_00000001.JPEG"}.get(
        kind, "")
    tar.addfile(info)


def members_only(path: Path) -> bytes:
    """A tar's members without its end-of-archive blocks (to splice archives together)."""
    with tarfile.open(path) as tar:
        tar.getmembers()
        end = tar.offset
    return path.read_bytes()[:end]


def sparse_tar(tmp_path: Path) -> bytes:
    """One GNU sparse member, 1 GiB of holes around 1 byte (GNU tar writes it), without the
    end-of-archive blocks."""
    holes = tmp_path / "sparse" / "sparse.JPEG"
    holes.parent.mkdir()
    with holes.open("wb") as fh:
        fh.truncate(2**30)
        fh.seek(2**29)
        fh.write(b"x")
    out = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", out, "-C", holes.parent,
                    holes.name], check=True)
    holes.unlink()
    return members_only(out)


#: Each hostile member, and the reason the report gives for it.
HOSTILE = {
    "../../escape.JPEG": ("file", "a path with '..'"),
    "/tmp/abs.JPEG": ("file", "an absolute path"),
    "link.JPEG": ("symlink", "a symbolic link (to '/etc/passwd'): links are not followed"),
    "hard.JPEG": ("hardlink", "a hard link"),
    "dev.JPEG": ("chardev", "a device or FIFO"),
    "fifo.JPEG": ("fifo", "a device or FIFO"),
}


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar writes the sparse member")
def test_hostile_archive_members_are_refused_and_reported(tmp_path, monkeypatch):
    fx = make_imagenet_archives(tmp_path / "src")
    val = fx.root / archives.ARCHIVES["val"][0]
    with tarfile.open(val, "a") as tar:
        for name, (kind, _) in HOSTILE.items():
            hostile_member(tar, name, kind)
    # the GNU sparse member, spliced in from GNU tar's own archive
    body, sparse = members_only(val), sparse_tar(tmp_path)
    monkeypatch.setattr(archives, "MAX_IMAGE_BYTES", 4096)  # the oversized member: 5000 bytes
    big = io.BytesIO()
    with tarfile.open(fileobj=big, mode="w") as tar:
        hostile_member(tar, "big.JPEG", "file", b"\xff" * 5000)
    val.write_bytes(body + sparse + big.getvalue())

    out = tmp_path / "extracted"
    result = prepared(ImagenetConfig(fx.root, "archives", out), tmp_path / "out")
    report = result.report[result.report["verdict"] == archives.REFUSED]
    reasons = {path.split(":", 1)[1]: detail for path, detail in zip(report["path"],
                                                                       report["detail"])}
    expected = {name: reason for name, (_, reason) in HOSTILE.items()}
    expected["sparse.JPEG"] = "a sparse file"
    expected["big.JPEG"] = "5,000 bytes, above the limit"
    assert set(reasons) == set(expected), reasons
    for name, fragment in expected.items():
        assert fragment in reasons[name], (name, reasons[name])
    assert (report["split"] == "val").all() and (report["action"] == "ignore").all()
    # nothing refused was written, inside the extraction or outside it
    written = {p.name for p in out.rglob("*") if p.is_file()}
    assert not written & {Path(n).name for n in expected}, written
    assert not (tmp_path / "escape.JPEG").exists() and not Path("/tmp/abs.JPEG").exists()
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) < 2**20
    # the usable images are all there: the same manifests as from the clean archives
    clean = make_imagenet_archives(tmp_path / "clean")
    again = prepared(ImagenetConfig(clean.root, "archives", tmp_path / "clean_x"),
                     tmp_path / "clean_out")
    for split in ("train", "val"):
        assert [Path(p).name for p in result.manifests[split]["path"]] == [
            Path(p).name for p in again.manifests[split]["path"]]
    # a rerun reuses the extraction and reports the same refusals
    reused = prepare(collect(ImagenetConfig(fx.root, "archives", out)), tmp_path / "o2",
                     tmp_path / "o2", 1, quality=95)
    assert (reused.report["verdict"] == archives.REFUSED).sum() == len(expected)


@pytest.mark.parametrize("declared", [5000, 50 * 2**30])
def test_an_archive_cut_short_is_one_clear_error(tmp_path, declared):
    """A member whose data stops before its declared size (5 KB, or 50 GiB in the header
    with 2 KB behind it): one error naming the archive and the member, no traceback."""
    fx = make_imagenet_archives(tmp_path / "src")
    val = fx.root / archives.ARCHIVES["val"][0]
    body = members_only(val)
    info = tarfile.TarInfo("ILSVRC2012_val_00000099.JPEG")
    info.size = declared
    val.write_bytes(body + info.tobuf(format=tarfile.GNU_FORMAT) + b"\xff" * 2048)
    with pytest.raises(DatasetError) as error:
        collect(ImagenetConfig(fx.root, "archives", tmp_path / "extracted"))
    message = str(error.value)
    assert str(val) in message and "ILSVRC2012_val_00000099.JPEG" in message, message
    assert "ends early or is damaged" in message and "re-download" in message
    assert not (tmp_path / "extracted").exists()  # nothing that looks finished
