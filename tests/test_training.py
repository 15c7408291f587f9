"""Training core, evaluation, checkpoints and the classification table."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from pipeline.core.io import write_json
from pipeline.data.imagenet import DatasetError, scan_tree
from pipeline.data.synth_imagenet import SynthSpec, generate
from pipeline.models import ResizerNet, build_model
from pipeline.params.runs import Ref, Run, all_runs, runs_of
from pipeline.report.table_format import ablation_grids, conventions, page, people
from pipeline.report.tables import (NOISE_NOTES, ablation_table, main_table, metrics_file,
                                    read_runs, total_epochs, transfer_table)
from pipeline.training.checkpoint import (CheckpointError, load_backbone, load_checkpoint,
                                          load_resizer, save_checkpoint)
from pipeline.training.evaluate import evaluate_split, topk_correct
from pipeline.training.loop import fit
from pipeline.training.runner import Inits, build_run_model, train_run
from tests.conftest import KNOBS_OFF, make_recipe, resizer_spec


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate(SynthSpec(classes=4, train_per_class=8, val_per_class=4, min_side=40, max_side=56,
                       fine_cycles=(14, 16), fine_amplitude=(0.12, 0.2),
                       nuisance_cycles=(3, 10), nuisance_amplitude=(0.03, 0.12),
                       jpeg_quality=90), root)
    wnids, manifests = scan_tree(root)
    return root, wnids, manifests


def test_manifests(tiny_set):
    root, wnids, manifests = tiny_set
    train, val = manifests["train"], manifests["val"]
    assert list(train.columns) == ["path", "label", "wnid", "width", "height"]
    assert len(train) == 32 and len(val) == 16
    assert (train.groupby("wnid").label.nunique() == 1).all()
    assert train.label.tolist() == sorted(train.label.tolist())
    assert dict(zip(train.wnid, train.label)) == {w: i for i, w in enumerate(wnids)}
    assert (train.width >= 40).all() and (train.height >= 40).all()


def test_manifest_errors(tmp_path):
    with pytest.raises(DatasetError, match="no 'train/' directory"):
        scan_tree(tmp_path)
    (tmp_path / "train" / "n1").mkdir(parents=True)
    (tmp_path / "val" / "n2").mkdir(parents=True)
    with pytest.raises(DatasetError, match="absent from train"):
        scan_tree(tmp_path)


def test_topk_correct():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.3], [0.2, 0.3, 0.5]])
    targets = torch.tensor([1, 2, 0])
    assert topk_correct(logits, targets, (1, 2, 5)) == [1, 2, 3]


def test_evaluate_counts_every_image():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3, 2))
    batches = [(torch.randn(5, 3), torch.zeros(5, dtype=torch.long)),
               (torch.randn(2, 3), torch.ones(2, dtype=torch.long))]
    metrics = evaluate_split(model, batches, torch.device("cpu"), ks=(1, 2))
    assert metrics["images"] == 7 and metrics["top2_err"] == 0.0
    with pytest.raises(ValueError, match="no images"):
        evaluate_split(model, [], torch.device("cpu"))


def test_fit_learns_a_separable_problem():
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long()
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    model = nn.Linear(4, 2)
    history = fit(model, lambda epoch: batches, batches, make_recipe(epochs=8, lr=0.5),
                  torch.device("cpu"))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_top1_err"] < 10
    assert [h["lr"] for h in history[:3]] == [0.5, 0.5, 0.5 * 0.94]


def test_learned_run_warm_starts_backbone(tiny_set, tiny_params, tmp_path):
    _, _, manifests = tiny_set
    params = tiny_params
    runs = {r.mode: r for r in runs_of(params, "classification") if r.seed == 0}
    base = train_run(runs["default"], params, manifests, 4, Inits(), torch.device("cpu"))
    save_checkpoint(tmp_path / "base.pt", base.model, {"backbone": "resnet_tiny",
                                                       "num_classes": 4})
    init = load_checkpoint(tmp_path / "base.pt")
    learned = train_run(runs["learned"], params, manifests, 4, Inits(init), torch.device("cpu"))
    assert learned.metrics["resizer"] == "learned" and learned.metrics["r"] == params["r"]
    assert learned.metrics["resizer_params"] > 0 and learned.metrics["gmacs"] > 0
    assert 0 <= learned.metrics["top1_err"] <= 100
    assert len(learned.history) == params["train"]["finetune"]["epochs"]


def test_checkpoint_bytes_are_reproducible(tmp_path):
    model = build_model("resnet_tiny", resizer_spec("learned", 16, 1, 4), 4)
    save_checkpoint(tmp_path / "a.pt", model, {"backbone": "resnet_tiny", "num_classes": 4})
    save_checkpoint(tmp_path / "b.pt", model, {"backbone": "resnet_tiny", "num_classes": 4})
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_load_backbone_checks_the_checkpoint(tmp_path):
    source = build_model("resnet_tiny", resizer_spec("bilinear", 16), 4)
    save_checkpoint(tmp_path / "m.pt", source, {"backbone": "resnet_tiny", "num_classes": 4})
    target = build_model("resnet_tiny", resizer_spec("learned", 16, 1, 4), 4)
    load_backbone(target, load_checkpoint(tmp_path / "m.pt"), backbone="resnet_tiny",
                  num_classes=4, source="m.pt")
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(value, target.backbone.state_dict()[key])
    with pytest.raises(CheckpointError, match="with 10;"):
        load_backbone(build_model("resnet_tiny", resizer_spec("bilinear", 16), 10),
                      load_checkpoint(tmp_path / "m.pt"), backbone="resnet_tiny",
                      num_classes=10, source="m.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_model_composition():
    model = build_model("resnet_tiny", resizer_spec("learned", 16, 2, 4), 4)
    assert isinstance(model, ResizerNet) and len(model.resizer.blocks) == 2
    assert model(torch.randn(2, 3, 40, 30)).shape == (2, 4)
    with pytest.raises(ValueError, match="registered"):
        build_model("resnet_tiny", resizer_spec("lanczos", 16), 4)
    with pytest.raises(ValueError, match="timm"):
        build_model("resnet_nope", resizer_spec("bilinear", 16), 4)


def fake_metrics(root, runs, top1=lambda run: 50.0 + run.seed):
    """A metrics JSON per run, as the train stage writes them."""
    for run in runs:
        write_json(metrics_file(root, run), {
            "task": run.task, "backbone": run.backbone, "mode": run.mode, "seed": run.seed,
            "resizer": run.resizer, "input_size": run.input_size, "model_size": run.model_size,
            "r": run.r, "n": run.n, "top1_err": top1(run), "top5_err": 5.0, "srcc_mean": 0.5,
            "plcc_mean": 0.5, "srcc_std": 0.1, "plcc_std": 0.1, "accuracy": 0.7, "emd": 0.1,
            "params": 1, "gmacs": 0.1, "resizer_params": 0, "resizer_conv_weights": 0,
            "resizer_gmacs": 0.0, "macs_tool": "t", "test_images": 600, "train_loss": 1.0,
            "health": "ok"})


def test_tables_aggregate_over_seeds(params, tmp_path):
    params["seeds"] = [0, 1, 2]
    params["transfer"]["classification"] = [{"source": "resnet_tiny",
                                             "target": params["classification"]["backbones"][1]}]
    params["ablation"]["classification"] = ["resnet_tiny"]
    runs = all_runs(params)
    fake_metrics(tmp_path, runs)
    frame = read_runs(tmp_path, runs)
    table = main_table(frame, "classification")
    modes = list(dict.fromkeys(r.mode for r in runs_of(params, "classification")
                               if r.family != "transfer" and r.family != "ablation"))
    assert list(table["mode"].unique()) == modes
    row = table[(table["backbone"] == "resnet_tiny") & (table["mode"] == "default")].iloc[0]
    assert row["top1_err_mean"] == pytest.approx(51.0) and row["seeds"] == 3
    assert row["top1_err_std"] == pytest.approx(1.0)  # sample std of 50, 51, 52
    scratch, finetune = params["train"]["scratch"]["epochs"], params["train"]["finetune"]["epochs"]
    epochs = dict(zip(table["mode"], table["epochs"]))
    assert epochs["default"] == scratch and epochs["learned"] == scratch + finetune
    assert epochs["bilinear_continued"] == epochs["learned"]
    iqa = main_table(frame, "iqa")
    assert iqa["epochs"].iloc[0] == scratch + params["train"]["iqa"]["epochs"]
    assert "srcc_mean_mean" in iqa.columns and "top1_err_mean" not in iqa.columns
    transfer = transfer_table(frame, params["transfer"])
    pair = params["transfer"]["classification"][0]
    assert list(transfer["resizer_from"]) == ["(fixed)", pair["target"], pair["source"]]
    ablation = ablation_table(frame)
    assert len(ablation) == len(params["ablation"]["r"]) * len(params["ablation"]["n"])
    assert ablation["r"].dtype.kind == ablation["n"].dtype.kind == "i"  # "r = 1", not "r = 1.0"
    assert ablation_grids(ablation)[0][1].iloc[0, 0] == f"r = {params['ablation']['r'][0]}"
    text = page("T", [("", people(table, "classification"))], [])
    assert re.search(r"51\.0 ± 1\.\d", text), text
    (tmp_path / runs[-1].task / runs[-1].backbone / runs[-1].mode / "seed2.json").unlink()
    with pytest.raises(FileNotFoundError, match=runs[-1].mode):
        read_runs(tmp_path, runs)


def test_transfer_rows_against_the_targets_default_and_own_learned(params, tmp_path):
    params["seeds"] = [0, 1, 2]
    second = params["classification"]["backbones"][1]
    params["transfer"]["classification"] = [{"source": "resnet_tiny", "target": second}]
    top1 = {"default": 70.0, "learned": 69.0, "from_resnet_tiny": 60.0}
    runs = all_runs(params)
    fake_metrics(tmp_path, runs, top1=lambda run: top1.get(run.mode, 50.0) + run.seed)
    transfer = transfer_table(read_runs(tmp_path, runs), params["transfer"]).set_index("mode")
    moved = transfer.loc["from_resnet_tiny"]
    # each mean's s.e.: the test-set error (binomial at 600 images) beats the seed sd of 1
    se = (0.61 * 0.39 / 600) ** 0.5 * 100 / 3 ** 0.5
    own_se = (0.70 * 0.30 / 600) ** 0.5 * 100 / 3 ** 0.5
    assert moved["delta_vs_own"] == pytest.approx(-9.0)
    assert moved["delta_vs_own_se"] == pytest.approx(math.hypot(se, own_se), abs=1e-3)
    assert moved["delta_vs_own_resolved"] and moved["delta_resolved"]
    assert moved["delta_vs_default"] == pytest.approx(-10.0)
    own = transfer.loc["learned"]
    assert pd.isna(own["delta_vs_own"]) and not own["delta_resolved"]  # 1 point: noise
    shown = people(transfer.reset_index(), "classification")
    assert shown["vs own learned (± s.e.)"].iloc[2].startswith("−9.0") or \
        shown["vs own learned (± s.e.)"].iloc[2].startswith("-9.0")


def test_one_seed_has_no_spread(params, tmp_path):
    params["seeds"] = [0]
    runs = all_runs(params)
    fake_metrics(tmp_path, runs)
    table = main_table(read_runs(tmp_path, runs), "classification")
    assert table["top1_err_std"].isna().all()
    assert not people(table, "classification")["top-1 err (%)"].str.contains("±").any()


def test_total_epochs_follows_init_chain():
    a = Run("classification", "baseline", "b", "default", "bilinear", 32, 32, 10, 0.1, 0)
    b = Run("classification", "learned", "b", "x", "learned", 64, 32, 3, 0.1, 0,
            Ref("classification", "b", "default"))
    c = Run("iqa", "learned", "b", "x", "learned", 64, 32, 2, 0.1, 0, Ref("classification", "b", "x"))
    assert total_epochs(b, [a, b]) == 13 and total_epochs(a, [a, b]) == 10
    assert total_epochs(c, [a, b, c]) == 15


def test_iqa_model_starts_from_the_classifier_without_its_head(tmp_path):
    source = build_model("resnet_tiny", resizer_spec("bilinear", 16), 4)
    save_checkpoint(tmp_path / "cls.pt", source, {"backbone": "resnet_tiny", "num_classes": 4})
    run = Run("iqa", "baseline", "resnet_tiny", "default", "bicubic", 16, 16, 1, 0.01, 0,
              Ref("classification", "resnet_tiny", "default"))
    model = build_run_model(run, 10, Inits(load_checkpoint(tmp_path / "cls.pt")))
    assert model.backbone.fc.out_features == 10
    for key, value in source.backbone.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(value, model.backbone.state_dict()[key]), key
    same_task = Run("iqa", "learned", "resnet_tiny", "x", "learned", 32, 16, 1, 0.01, 0,
                    Ref("iqa", "resnet_tiny", "default"), r=1, n=4, knobs=KNOBS_OFF)
    with pytest.raises(CheckpointError, match="4 outputs"):  # an IQA init must have 10 outputs
        build_run_model(same_task, 10, Inits(load_checkpoint(tmp_path / "cls.pt")))


def test_transfer_starts_the_resizer_from_the_source(tmp_path):
    source = build_model("resnet_tiny", resizer_spec("learned", 16, 1, 4), 4)
    save_checkpoint(tmp_path / "src.pt", source, {"backbone": "resnet_tiny", "num_classes": 4,
                                                  "run": {"resizer": "learned", "r": 1, "n": 4}})
    target = build_model("mobilenetv2_050", resizer_spec("bilinear", 16), 4)
    save_checkpoint(tmp_path / "tgt.pt", target, {"backbone": "mobilenetv2_050",
                                                  "num_classes": 4})
    run = Run("classification", "transfer", "mobilenetv2_050", "from_resnet_tiny", "learned", 32,
              16, 1, 0.01, 0, Ref("classification", "mobilenetv2_050", "default"),
              Ref("classification", "resnet_tiny", "learned"), r=1, n=4, knobs=KNOBS_OFF)
    model = build_run_model(run, 4, Inits(load_checkpoint(tmp_path / "tgt.pt"),
                                          load_checkpoint(tmp_path / "src.pt")))
    for key, value in source.resizer.state_dict().items():
        assert torch.equal(value, model.resizer.state_dict()[key]), key
    for key, value in target.backbone.state_dict().items():
        assert torch.equal(value, model.backbone.state_dict()[key]), key
    with pytest.raises(CheckpointError, match="r=2"):
        load_resizer(build_model("resnet_tiny", resizer_spec("learned", 16, 2, 4), 4),
                     load_checkpoint(tmp_path / "src.pt"), r=2, n=4, source="src")


def ava_manifests(root, sizes: dict[str, int]) -> dict[str, pd.DataFrame]:
    """Small AVA-style manifests (path, p1..p10) over random JPEGs: a smoother image gets
    higher votes, so there is something to learn."""
    from PIL import Image, ImageFilter
    rng = np.random.default_rng(0)
    frames = {}
    for split, count in sizes.items():
        rows = []
        for i in range(count):
            blur = i % 4
            image = Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
            path = root / f"{split}_{i}.jpg"
            image.filter(ImageFilter.GaussianBlur(blur)).save(path, quality=90)
            votes = np.bincount(np.clip(rng.normal(3 + 1.5 * blur, 1.2, 100).round(), 1, 10)
                                .astype(int) - 1, minlength=10)
            rows.append({"path": str(path), **{f"p{k + 1}": votes[k] / votes.sum()
                                                for k in range(10)}})
        frames[split] = pd.DataFrame(rows)
    return frames


def test_iqa_training_predicts_distributions(tiny_params, tmp_path):
    manifests = ava_manifests(tmp_path, {"train": 24, "test": 8})
    run = Run("iqa", "baseline", "resnet_tiny", "default", "bicubic", 16, 16, 2, 0.05, 0)
    result = train_run(run, tiny_params, manifests, 10, Inits(), torch.device("cpu"))
    metrics = result.metrics
    for key in ("srcc_mean", "plcc_mean", "srcc_std", "plcc_std", "accuracy", "emd"):
        assert key in metrics and metrics[key] == metrics[key], key  # present, not NaN
    assert 0 <= metrics["accuracy"] <= 1 and 0 < metrics["emd"] < 1
    assert metrics["test_images"] == len(manifests["test"])
    assert [h["epoch"] for h in result.history] == [1, 2] and "val_srcc_mean" in result.history[0]


def test_markdown_pages_read_like_the_papers_tables():
    """Human headers with units, one precision per metric, the backbone's best in bold, notes
    under the table and the shared conventions linked, not repeated."""
    frame = pd.DataFrame({
        "backbone": ["b", "b", "b"], "mode": ["default", "learned", "broken"],
        "input_size": [32, 64, 64], "model_size": [32, 32, 32], "epochs": [12, 16, 16],
        "top1_err_mean": [72.6666, 31.54, 20.0], "top1_err_std": [float("nan")] * 3,
        "health": ["ok", "ok", "diverged (seed 0)"], "top1_err_se": [1.8194, 1.9, 2.0],
        "params": [326124, 338159, 338159], "gmacs": [0.0039012, 0.024071, 0.024071]})
    text = page("T", [("", people(frame, "classification"))], ["first\nsecond"])
    assert "| backbone | mode" in text.replace("  ", " ").replace("  ", " ")
    assert "top-1 err (%)" in text and "px (in → model)" in text and "64 → 32" in text
    assert "72.7" in text and "72.67" not in text and "1.8" in text
    assert "**31.5**" in text and "**20.0**" not in text  # a diverged row is never the best
    assert "0.326" in text and "0.0039" in text and "e-0" not in text
    assert "- first" in text and "- second" in text and "[README.md](README.md)" in text
    assert "health: ok, diverged" not in text  # the shared notes live in the README


def test_table_notes_name_the_seeds_averaged():
    assert "mean ± sample standard deviation over seeds [0, 1]" in conventions("t", [0, 1],
                                                                              NOISE_NOTES)
    assert "one run (seed 0), so no spread" in conventions("t", [0], NOISE_NOTES)
    assert "no runs configured" in conventions("t", [], NOISE_NOTES)
    assert "health: ok, diverged" in conventions("t", [0], NOISE_NOTES)
