"""The bill before the run: per-run arithmetic, the anchor's source, the data and disk lines,
and the command on the tiny configuration and the paper preset."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from pipeline.core.errors import ConfigError
from pipeline.params.runs import Run, all_runs
from pipeline.report.estimate import (AVA_IMAGES, AVA_TEST, IMAGENET_ARCHIVE_BYTES, PUBLISHED_RATE,
                                      Anchor, Split, anchor, disk_rows, family_rows, imagenet_rows,
                                      run_cost, run_costs, splits)
from pipeline.stages.estimate import merged, read_params
from tests.conftest import ROOT
from tests.fixtures_data import run_in_process

RUN = Run("classification", "baseline", "resnet_tiny", "default", "bilinear", 32, 32, 2, 0.1, 0)


def paper_params() -> dict:
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    return merged(base, yaml.safe_load((ROOT / "workflow/presets/paper.yaml").read_text()))


def test_a_run_costs_its_epochs_of_train_and_evaluation():
    cost = run_cost(RUN, Split(100, 30, "test"), rate=10.0, weights=5)
    assert cost.images == 2 * 100 + 3 * 30  # every epoch evaluates, then the final one
    assert cost.gpu_hours == pytest.approx((2 * 100 + 3 * 30 / 3) / 10 / 3600)
    evaluated = run_cost(dataclasses.replace(RUN, epochs=0), Split(100, 30, "test"), 10.0, 5)
    assert evaluated.images == 30  # published weights evaluated as they are
    assert cost.checkpoint_bytes == 20


def test_rates_scale_with_macs_and_families_add_up():
    base = Anchor(100.0, "test")
    other = Run("iqa", "learned", "resnet_tiny", "learned", "learned", 64, 32, 1, 0.1, 0)
    costs = run_costs([RUN, RUN, other], {"classification": Split(10, 0, ""),
                                          "iqa": Split(10, 0, "")}, base,
                      lambda run: (200, 1) if run.task == "iqa" else (100, 1), anchor_macs=100)
    assert costs[2].gpu_hours == pytest.approx(2 * costs[0].gpu_hours / RUN.epochs)
    rows = family_rows(costs)
    assert [(r["task"], r["family"], r["runs"]) for r in rows] == [
        ("classification", "baseline", 2), ("iqa", "learned", 1), ("all", "total", 3)]
    assert rows[-1]["gpu_hours"] == pytest.approx(sum(c.gpu_hours for c in costs))
    assert rows[-1]["epochs"] == 2 * RUN.epochs + 1


def test_the_anchor_is_measured_only_when_the_gpu_check_measured_it(tmp_path):
    report = tmp_path / "gpu_check.json"
    assert anchor(report).images_per_s == PUBLISHED_RATE  # no report
    entry = {"status": "ok", "result": {"bf16_cl_images_per_s": 3100.5}}
    report.write_text(json.dumps({"device": "NVIDIA H200", "date": "2026-12-01",
                                  "checks": {"train": entry}}))
    measured = anchor(report)
    assert measured.images_per_s == 3100.5 and "measured" in measured.source
    assert "NVIDIA H200" in measured.source
    report.write_text(json.dumps({"checks": {"train": {**entry, "status": "failed"}}}))
    assert anchor(report).source.startswith("published")


def test_real_data_counts_and_disk_are_stated_until_the_data_is_there(tmp_path):
    params = paper_params()
    real = {"classification": False, "iqa": False}
    counts = splits(params, real)
    assert (counts["classification"].train, counts["classification"].eval) == (1_281_167, 50_000)
    assert (counts["iqa"].train, counts["iqa"].eval) == (AVA_IMAGES - AVA_TEST, AVA_TEST)
    params = merged(params, {"data": {"imagenet": {"root": str(tmp_path / "none")},
                                      "ava": {"root": str(tmp_path / "none")}}})
    disk = {row["what"].split(" ")[1]: row for row in disk_rows(params, real, [])}
    assert disk["archives"]["bytes"] == sum(IMAGENET_ARCHIVE_BYTES.values())
    assert disk["archives"]["source"].startswith("stated")
    assert disk["images"]["bytes"] is None and "unknown" in disk["images"]["source"]


def test_archives_that_are_there_are_measured(tmp_path):
    for index, name in enumerate(IMAGENET_ARCHIVE_BYTES):
        (tmp_path / name).write_bytes(b"x" * (10 + index))
    net = {"root": str(tmp_path), "layout": "auto", "extract_to": "data/extracted/imagenet"}
    archives, extracted = imagenet_rows(net)
    assert archives["bytes"] == 10 + 11 + 12 and archives["source"].startswith("measured")
    assert extracted["bytes"] == 10 + 11 + 12 - IMAGENET_ARCHIVE_BYTES[
        "ILSVRC2012_devkit_t12.tar.gz"]
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    (tree,) = imagenet_rows(net)
    assert "tree" in tree["what"] and "nothing copied" in tree["source"]


def test_an_unknown_preset_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match="no preset 'papr'.*paper"):
        read_params(ROOT / "params.yaml", ["paper", "papr"])


def test_the_command_bills_every_run_of_the_plan(tiny, tmp_path, capsys):
    assert run_in_process(tmp_path / "p.yaml", tiny, "estimate", "--gpus", "2") == 0
    out = capsys.readouterr().out
    total = next(line for line in out.splitlines() if line.startswith("| all | total |"))
    assert total.split("|")[3].strip() == f"{len(all_runs(tiny)):,}"
    assert "Wall time on 2 GPU(s)" in out and "params: synthetic.imagenet" in out
    assert "published: ResNet-50" in out


@pytest.mark.parametrize("presets", [["paper"], ["paper", "published"]])
def test_the_readme_quotes_the_paper_presets_bill(tmp_path, capsys, presets):
    """The README's tables and disk are what the command prints for the paper preset, from
    scratch and from published weights."""
    flags = [word for name in presets for word in ("--preset", name)]
    assert run_in_process(tmp_path / "p.yaml", yaml.safe_load(
        (ROOT / "params.yaml").read_text()), "estimate", *flags, "--gpus", "8") == 0
    out = capsys.readouterr().out
    disk = {line.split("|")[1].strip(): line.split("|")[2].strip()
            for line in out.splitlines() if " GB " not in line and line.count("|") == 4}
    table = [line for line in out.splitlines() if line.count("|") == 7 and "|---" not in line]
    readme = (ROOT / "README.md").read_text()
    for line in table:
        assert line in readme, line
    hours = float(table[-1].split("|")[-2].replace(",", ""))
    flat = " ".join(readme.split())
    assert (f"About {hours / 8:.0f} hours on 8 GPUs; disk: {disk['ImageNet archives']} GB of "
            f"archives, as much again extracted, AVA, and "
            f"{disk['checkpoints (one per run, float32 weights)']} GB of checkpoints") in flat
