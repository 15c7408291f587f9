"""AVA: AVA.txt parsed, vote statistics, official or seeded split, every image checked and every
row accounted for; the prepare-ava stage end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from pipeline.core.errors import DatasetError
from pipeline.data.ava import (AVA_COLUMNS, MANIFEST_COLUMNS, AvaConfig, parse_ava_txt, prepare,
                               vote_stats)
from pipeline.loaders.decoded import read_decoded
from pipeline.loaders.torch_loader import read_rgb
from tests.conftest import deep_merge
from tests.fixtures_data import STARTERS, background, make_ava, start_stage


def start_run(tmp_path_factory):
    """python -m pipeline prepare-ava on the fixture, started early (fixtures_data.background)."""
    import yaml

    from tests.conftest import ROOT

    tmp = tmp_path_factory.mktemp("stage")
    fx = make_ava(tmp / "ava")
    params = deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()),
                        {"data": {"ava": {"root": str(fx.root)}}})
    run = start_stage(tmp / "params.yaml", params, "prepare-ava", "--out", str(tmp / "out"),
                      "--report", str(tmp / "results/ava_report.csv"), "--summary",
                      str(tmp / "results/ava_summary.json"))
    return tmp, fx, run


STARTERS[__name__] = start_run


@pytest.fixture(scope="module", autouse=True)
def stage_run(request):
    return background(request, __name__)


def prepared(root: Path, out: Path, **cfg):
    out.mkdir(parents=True)
    return prepare(AvaConfig(root, **cfg), out, out, workers=1, quality=95)


def test_parse_ava_txt(tmp_path):
    fx = make_ava(tmp_path / "ava")
    table = parse_ava_txt(fx.root / "AVA.txt")
    assert list(table.columns) == AVA_COLUMNS and len(table) == len(fx.votes)
    assert (table["tag2"] == 0).any() and (table["tag1"] == 0).any()  # tag-0 entries
    for row in table.itertuples():
        assert [getattr(row, f"v{k}") for k in range(1, 11)] == fx.votes[row.image_id]
    (tmp_path / "bad.txt").write_text("1 953619 0 1 2 3 4 5 6 7 8 9 1 2\n")  # 14 columns
    with pytest.raises(DatasetError, match="line 1 .* expected 15"):
        parse_ava_txt(tmp_path / "bad.txt")


def test_vote_stats():
    stats = vote_stats(np.array([[0, 0, 0, 0, 10, 10, 0, 0, 0, 0],
                                 [1, 0, 0, 0, 0, 0, 0, 0, 0, 3]]))
    assert stats["votes"].tolist() == [20, 4]
    assert stats["mean"].tolist() == pytest.approx([5.5, 7.75])
    assert stats["std"].tolist() == pytest.approx([0.5, np.sqrt(0.25 * 6.75**2 + 0.75 * 2.25**2)])
    p = stats[[f"p{k}" for k in range(1, 11)]].to_numpy()
    assert p.sum(axis=1) == pytest.approx([1.0, 1.0]) and p[1, 9] == pytest.approx(0.75)


def test_official_split(tmp_path):
    fx = make_ava(tmp_path / "ava")
    out = tmp_path / "out"
    result = prepared(fx.root, out)
    assert result.summary["split"]["source"] == "official"
    for split in ("train", "test"):
        frame = result.manifests[split]
        assert list(frame.columns) == MANIFEST_COLUMNS
        assert sorted(frame["image_id"]) == sorted(fx.kept[split])
        for row in frame.itertuples():
            votes = np.array(fx.votes[row.image_id], dtype=float)
            p = votes / votes.sum()
            assert row.votes == votes.sum()
            assert row.mean == pytest.approx((np.arange(1, 11) * p).sum())
            assert [getattr(row, f"p{k}") for k in range(1, 11)] == pytest.approx(p)
            assert (row.width, row.height) == fx.kept[split][row.image_id]
            with Image.open(row.path) as img:
                assert img.mode == "RGB" and img.size == (row.width, row.height)
            converted = row.image_id in fx.converted[split]
            assert Path(row.path).is_relative_to(out / "converted" / split) == converted
        report = result.report[result.report["split"] == split]
        verdicts = {action: dict(zip(report.loc[report["action"] == action, "path"].map(
            lambda p: int(Path(p).stem)), report.loc[report["action"] == action, "verdict"]))
            for action in ("drop", "convert")}
        assert verdicts == {"drop": fx.dropped[split], "convert": fx.converted[split]}
        counts = result.summary["splits"][split]
        assert counts["source"] == sum(s == split for s in fx.split.values())
        assert counts["source"] == counts["kept"] + counts["dropped"] == \
            len(fx.kept[split]) + len(fx.dropped[split])
    ignored = result.report[result.report["action"] == "ignore"]
    assert ignored["verdict"].tolist() == ["unlabeled"]  # the file without a row
    assert Path(ignored["path"].iloc[0]).stem == str(fx.unlabeled[0])
    split = result.tables["split"]
    assert dict(zip(split["image_id"], split["split"])) == fx.split


def test_seeded_split_is_recorded_and_reproducible(tmp_path):
    fx = make_ava(tmp_path / "ava", official_split=False)
    first = prepared(fx.root, tmp_path / "a", test_fraction=0.3, split_seed=4)
    again = prepared(fx.root, tmp_path / "b", test_fraction=0.3, split_seed=4)
    other = prepared(fx.root, tmp_path / "c", test_fraction=0.3, split_seed=5)
    assert first.summary["split"] == {"source": "seeded", "seed": 4, "test_fraction": 0.3}
    chosen_split = first.tables["split"]
    assert chosen_split.equals(again.tables["split"])
    assert not chosen_split.equals(other.tables["split"])
    assert len(chosen_split) == len(fx.votes) and (chosen_split["split"] == "test").sum() == 4
    for split in ("train", "test"):
        chosen = set(chosen_split.loc[chosen_split["split"] == split, "image_id"])
        assert set(first.manifests[split]["image_id"]) <= chosen
        counts = first.summary["splits"][split]
        assert counts["source"] == len(chosen) == counts["kept"] + counts["dropped"]
    with pytest.raises(DatasetError, match="set split: seeded"):
        prepared(fx.root, tmp_path / "d", split="official")


def test_rows_without_votes_and_repeated_ids_are_dropped(tmp_path):
    fx = make_ava(tmp_path / "ava")
    lines = (fx.root / "AVA.txt").read_text().splitlines()
    first = lines[0].split()
    zero = " ".join([first[0], first[1], *["0"] * 10, *first[12:]])
    repeat = lines[1]
    (fx.root / "AVA.txt").write_text("\n".join([zero, *lines[1:], repeat]) + "\n")
    result = prepared(fx.root, tmp_path / "out")
    dropped = result.report[result.report["action"] == "drop"]
    assert set(dropped["verdict"]) >= {"no_votes", "duplicate_row"}
    assert int(first[1]) not in set(result.manifests[fx.split[int(first[1])]]["image_id"])
    total = result.summary["total"]
    assert total["source"] == len(lines) + 1 == total["kept"] + total["dropped"]


def test_missing_root_says_where_to_put_ava(tmp_path):
    with pytest.raises(DatasetError, match="put AVA there .*AVA.txt, images/<id>.jpg"):
        prepared(tmp_path / "nowhere", tmp_path / "out")


def test_prepare_ava_stage(stage_run):
    tmp, fx, run = stage_run
    code, _, err = run.result()
    assert code == 0, err
    assert sorted(p.name for p in (tmp / "out").iterdir()) == [
        "converted", "manifests.json", "split.csv", "test.csv", "test.decoded.npz", "train.csv",
        "train.decoded.npz"]
    for split in ("train", "test"):
        frame = pd.read_csv(tmp / "out" / f"{split}.csv")
        assert list(frame.columns) == MANIFEST_COLUMNS
        # decoded once, the converted copies included (read before the folder moved in place)
        images = read_decoded(tmp / "out", split, frame)
        assert all(torch.equal(images.image(i), read_rgb(p)) for i, p in enumerate(frame["path"]))
        assert sorted(frame["image_id"]) == sorted(fx.kept[split])
        assert np.allclose(frame[[f"p{k}" for k in range(1, 11)]].sum(axis=1), 1.0)
    report = pd.read_csv(tmp / "results" / "ava_report.csv")
    assert set(report.loc[report["action"] == "drop", "verdict"]) == {
        "missing", "empty", "truncated", "undecodable"}
    summary = json.loads((tmp / "results" / "ava_summary.json").read_text())
    assert summary["total"]["source"] == summary["total"]["kept"] + summary["total"]["dropped"] \
        == len(fx.votes)
    assert summary["ignored"] == {"unlabeled": 1}
    assert "ava train: source" in err and "Traceback" not in err


def test_rows_outside_the_lists_and_list_entries_without_rows_are_reported(tmp_path):
    fx = make_ava(tmp_path / "ava")
    lists = fx.root / "aesthetics_image_lists"
    train = (lists / "generic_ls_train.jpgl").read_text().split()
    (lists / "generic_ls_train.jpgl").write_text("\n".join(train[1:]) + "\n")  # row left out
    with (lists / "generic_test.jpgl").open("a") as fh:
        fh.write("123456\n")  # listed, but AVA.txt has no such row
    result = prepared(fx.root, tmp_path / "out")
    ignored = result.report[result.report["action"] == "ignore"]
    verdicts = dict(zip(ignored["path"].map(lambda p: int(Path(p).stem)), ignored["verdict"]))
    assert verdicts == {int(train[0]): "not_in_split", 123456: "no_label_row",
                        fx.unlabeled[0]: "unlabeled"}
    assert int(train[0]) not in set(result.manifests["train"]["image_id"])
    summary = result.summary
    assert summary["rows"] == summary["total"]["source"] + summary["ignored"]["not_in_split"]


def test_an_image_linked_outside_the_root_is_reported_not_read(tmp_path):
    fx = make_ava(tmp_path / "ava")
    first = int((fx.root / "AVA.txt").read_text().split()[1])
    outside = tmp_path / "secret.jpg"
    (fx.root / "images" / f"{first}.jpg").rename(outside)
    (fx.root / "images" / f"{first}.jpg").symlink_to(outside)
    result = prepared(fx.root, tmp_path / "out")
    row = result.report[result.report["verdict"] == "outside_root"]
    assert len(row) == 1 and row["action"].item() == "drop"
    assert f"a link to {outside}, outside data.ava.root: not read" in row["detail"].item()
    assert first not in set(result.manifests[fx.split[first]]["image_id"])
