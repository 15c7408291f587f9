"""Training core, evaluation, checkpoints and the classification table."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from pipeline.checkpoint import CheckpointError, load_backbone, load_checkpoint, save_checkpoint
from pipeline.classification import train_run
from pipeline.config import Run, classification_runs
from pipeline.data.imagenet import DatasetError, scan_tree
from pipeline.data.synth_imagenet import SynthSpec, generate
from pipeline.evaluate import evaluate, topk_correct
from pipeline.models import ResizerNet, build_model
from pipeline.tables import classification_table, total_epochs
from pipeline.train import Recipe, fit


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate(SynthSpec(classes=4, train_per_class=8, val_per_class=4, min_side=40, max_side=56,
                       cycles=(18, 30), jpeg_quality=90), root)
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
    metrics = evaluate(model, batches, torch.device("cpu"), ks=(1, 2))
    assert metrics["images"] == 7 and metrics["top2_err"] == 0.0
    with pytest.raises(ValueError, match="no images"):
        evaluate(model, [], torch.device("cpu"))


def test_fit_learns_a_separable_problem():
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long()
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    model = nn.Linear(4, 2)
    history = fit(model, lambda epoch: batches, batches, Recipe(epochs=8, lr=0.5),
                  torch.device("cpu"))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_top1_err"] < 10
    assert [h["lr"] for h in history[:3]] == [0.5, 0.5, 0.5 * 0.94]


def test_learned_run_warm_starts_backbone(tiny_set, tiny_params, tmp_path):
    _, _, manifests = tiny_set
    params = tiny_params
    runs = {r.mode: r for r in classification_runs(params)}
    base = train_run(runs["default"], params, manifests, 4, None, torch.device("cpu"))
    save_checkpoint(tmp_path / "base.pt", base.model, {"backbone": "resnet_tiny",
                                                       "num_classes": 4})
    init = load_checkpoint(tmp_path / "base.pt")
    learned = train_run(runs["learned"], params, manifests, 4, init, torch.device("cpu"))
    assert learned.metrics["resizer"] == "learned" and learned.metrics["r"] == params["r"]
    assert learned.metrics["resizer_params"] > 0 and learned.metrics["gmacs"] > 0
    assert 0 <= learned.metrics["top1_err"] <= 100
    assert len(learned.history) == params["train"]["finetune"]["epochs"]


def test_checkpoint_bytes_are_reproducible(tmp_path):
    model = build_model("resnet_tiny", "learned", 16, 4, r=1, n=4)
    save_checkpoint(tmp_path / "a.pt", model, {"backbone": "resnet_tiny", "num_classes": 4})
    save_checkpoint(tmp_path / "b.pt", model, {"backbone": "resnet_tiny", "num_classes": 4})
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_load_backbone_checks_the_checkpoint(tmp_path):
    source = build_model("resnet_tiny", "bilinear", 16, 4)
    save_checkpoint(tmp_path / "m.pt", source, {"backbone": "resnet_tiny", "num_classes": 4})
    target = build_model("resnet_tiny", "learned", 16, 4, r=1, n=4)
    load_backbone(target, load_checkpoint(tmp_path / "m.pt"), backbone="resnet_tiny",
                  num_classes=4, source="m.pt")
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(value, target.backbone.state_dict()[key])
    with pytest.raises(CheckpointError, match="10 classes"):
        load_backbone(build_model("resnet_tiny", "bilinear", 16, 10),
                      load_checkpoint(tmp_path / "m.pt"), backbone="resnet_tiny",
                      num_classes=10, source="m.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_model_composition():
    model = build_model("resnet_tiny", "learned", 16, 4, r=2, n=4)
    assert isinstance(model, ResizerNet) and len(model.resizer.blocks) == 2
    assert model(torch.randn(2, 3, 40, 30)).shape == (2, 4)
    with pytest.raises(ValueError, match="registered"):
        build_model("resnet_tiny", "lanczos", 16, 4)
    with pytest.raises(ValueError, match="timm"):
        build_model("resnet_nope", "bilinear", 16, 4)


def test_classification_table(params):
    runs = classification_runs(params)
    metrics = {r.name: {"backbone": r.backbone, "mode": r.mode, "resizer": r.resizer,
                        "input_size": r.input_size, "model_size": r.model_size,
                        "top1_err": 50.0, "top5_err": 5.0, "params": 1, "gmacs": 0.1,
                        "resizer_params": 0, "resizer_gmacs": 0.0} for r in runs}
    table = classification_table(runs, metrics)
    assert list(table["mode"]) == [r.mode for r in runs]
    scratch, finetune = params["train"]["scratch"]["epochs"], params["train"]["finetune"]["epochs"]
    epochs = dict(zip(table["mode"], table["epochs"]))
    assert epochs["default"] == scratch and epochs["learned"] == scratch + finetune
    assert epochs["bilinear_continued"] == epochs["learned"]
    del metrics[runs[-1].name]
    with pytest.raises(FileNotFoundError, match=runs[-1].name):
        classification_table(runs, metrics)


def test_total_epochs_follows_init_chain():
    a = Run("classification", "b", "default", "bilinear", 32, 32, None, 10, 0.1)
    b = Run("classification", "b", "x", "learned", 64, 32, "default", 3, 0.1)
    assert total_epochs(b, [a, b]) == 13 and total_epochs(a, [a, b]) == 10


def test_markdown_tables_keep_counts_whole():
    from pipeline.tables import to_markdown
    frame = pd.DataFrame({"r": [1], "conv_weights": [11872], "gmacs": [0.81801]})
    text = to_markdown(frame, "T", ["first\nsecond"])
    assert "11,872" in text and "0.818" in text and "e+" not in text
    assert "- first" in text and "- second" in text
