"""Published weights (classification.weights): a weights file a test writes (a tiny timm
model's state dict, ``test_resnet``: timm publishes ``test_resnet.r160_in1k``) loads through
the same path as timm's hub weights, with the statistics it expects; a missing or mismatched
file is one clear error naming it, before any stage runs; the default run of a backbone with
published weights evaluates them (0 epochs) and everything downstream starts from it."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import timm
import torch
import yaml

from pipeline import cli
from pipeline.core.errors import ConfigError
from pipeline.core.manifests import write_manifests
from pipeline.dag.plan import check_and_write
from pipeline.data.imagenet import scan_tree
from pipeline.data.synth_imagenet import SynthSpec, generate
from pipeline.loaders import normalize
from pipeline.models import check_models
from pipeline.models.weights import InputStats, expected_preprocessing, load_published, overrides
from pipeline.params.runs import get_run
from pipeline.training.checkpoint import load_checkpoint
from pipeline.training.model import new_model
from tests.conftest import ROOT

BACKBONE = "test_resnet"
CLASSES = 4


def write_weights(path: Path, backbone: str = BACKBONE, classes: int = CLASSES,
                  seed: int = 1) -> Path:
    """A state dict of ``backbone`` with ``classes`` outputs, as a training script saves it."""
    torch.manual_seed(seed)
    torch.save(timm.create_model(backbone, num_classes=classes).state_dict(), path)
    return path


def with_weights(params: dict, source: str | Path) -> dict:
    """A copy of ``params`` (tiny) training test_resnet, from ``source``."""
    params = copy.deepcopy(params)
    params["classification"]["backbones"] = [BACKBONE]
    params["classification"]["weights"] = {BACKBONE: str(source)}
    params["iqa"]["backbones"] = params["ablation"]["classification"] = [BACKBONE]
    params["classification"]["warm"]["backbones"] = [BACKBONE]
    params["bench"]["loop"]["runs"] = [f"{BACKBONE}/default"]
    return params


def test_a_weights_file_loads_through_timms_published_path(tmp_path):
    path = write_weights(tmp_path / "weights.pth")
    model = load_published(BACKBONE, str(path), CLASSES)
    expected = torch.load(path)
    assert set(model.state_dict()) == set(expected)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
    # a downloaded hub folder: its model.safetensors
    from safetensors.torch import save_file

    folder = tmp_path / "snapshot"
    folder.mkdir()
    save_file(expected, folder / "model.safetensors")
    again = load_published(BACKBONE, str(folder), CLASSES)
    assert all(torch.equal(again.state_dict()[k], v) for k, v in expected.items())


@pytest.mark.parametrize("make, phrases", [
    (lambda d: d / "absent.pth", ["absent.pth does not exist"]),
    (lambda d: (d / "junk.pth").write_bytes(b"not a state dict") and d / "junk.pth",
     ["junk.pth is not a readable state dict"]),
    (lambda d: write_weights(d / "other.pth", backbone="resnet_tiny"),
     ["other.pth does not fit test_resnet", "keys of other shapes", "another architecture"]),
    (lambda d: write_weights(d / "imagenet.pth", classes=1000),
     ["imagenet.pth has a 1000-class classifier but the ImageNet set here has 4 classes"]),
    (lambda d: d, ["holds neither model.safetensors nor pytorch_model.bin"]),
    (lambda d: torch.save({"conv1.weight": torch.zeros(1)}, d / "part.pth") or d / "part.pth",
     ["part.pth has no fc.weight (the classifier of test_resnet)"]),
])
def test_a_bad_weights_file_is_one_error_naming_it_before_any_stage(tmp_path, tiny_params,
                                                                    make, phrases):
    source = make(tmp_path)
    params = with_weights(tiny_params, source)
    plan = tmp_path / "plan"
    with pytest.raises(ConfigError) as caught:
        check_and_write(params, root=plan)
    message = str(caught.value)
    assert f"classification.weights.{BACKBONE} = {str(source)!r}" in message
    for phrase in phrases:
        assert phrase in message
    assert not plan.exists(), "no digest is written, so no stage can start"


def test_timm_weights_are_checked_against_the_registry_and_the_classes(tiny_params):
    params = with_weights(tiny_params, "timm")
    with pytest.raises(ConfigError, match="timm's published weights for test_resnet have 1000 "
                                          "classes but the ImageNet set here has 4"):
        check_models(params, weights=True, num_classes=CLASSES)
    params["classification"]["backbones"] = ["resnet_tiny"]
    params["classification"]["weights"] = {"resnet_tiny": "timm"}
    with pytest.raises(ConfigError, match="timm publishes no weights for 'resnet_tiny'"):
        check_models(params, weights=True)


def test_the_backbone_sees_the_statistics_its_weights_expect(tiny_params, tmp_path):
    cfg = expected_preprocessing(BACKBONE)
    assert (cfg["mean"], cfg["std"]) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    images = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    theirs = (images / 255 - 0.5) / 0.5
    assert torch.allclose(InputStats(cfg["mean"], cfg["std"])(normalize(images)), theirs,
                          atol=1e-5)
    params = with_weights(tiny_params, write_weights(tmp_path / "w.pth"))
    for mode in ("default", "learned", "learned_scratch", "learned_warm"):
        run = get_run(params, "classification", BACKBONE, mode, 0)
        model = new_model(run, CLASSES)
        assert isinstance(model.stats, InputStats), mode
        assert not any(k.startswith("stats") for k in model.state_dict()), \
            "checkpoints keep their keys"
    assert new_model(get_run(tiny_params, "classification", "resnet_tiny", "default", 0),
                     CLASSES).stats is None
    lines = overrides(params, BACKBONE)
    assert any("mean/std (0.5, 0.5, 0.5)/(0.5, 0.5, 0.5) adopted" in line for line in lines)
    assert any("crop_pct is 0.95, loader.eval_crop is 0.875" in line for line in lines)
    assert overrides(tiny_params, "resnet_tiny") == []


def test_runs_follow_the_published_route(tiny_params, tmp_path):
    params = with_weights(tiny_params, write_weights(tmp_path / "w.pth"))
    params["train"]["pretrained"] = {"lr": 0.01, "epochs": 0}
    default = get_run(params, "classification", BACKBONE, "default", 0)
    assert (default.loads_weights, default.init, default.epochs) == (True, None, 0)
    hr = get_run(params, "classification", BACKBONE, "bilinear_hr", 0)
    assert hr.loads_weights and hr.epochs == 0
    learned = get_run(params, "classification", BACKBONE, "learned", 0)
    assert not learned.loads_weights and learned.weights == default.weights
    assert learned.init.mode == "default"
    joint = get_run(params, "classification", BACKBONE, "learned_scratch", 0)
    assert not joint.loads_weights and joint.init is None  # the positive control: scratch
    iqa = get_run(params, "iqa", BACKBONE, "default", 0)
    assert not iqa.loads_weights and iqa.init.task == "classification"


def test_the_projects_own_backbones_load_a_file_as_a_state_dict(tmp_path):
    """resnet_tiny and bninception have no published timm weights; a file still loads."""
    for backbone in ("resnet_tiny", "bninception"):
        path = write_weights(tmp_path / f"{backbone}.pth", backbone=backbone)
        model = load_published(backbone, str(path), CLASSES)
        assert all(torch.equal(model.state_dict()[k], v) for k, v in torch.load(path).items())


def test_weights_name_configured_backbones_only(tiny_params):
    from pipeline.params.config import validate

    tiny_params["classification"]["weights"] = {"resnet50": "timm"}
    with pytest.raises(ConfigError, match=r"classification.weights names \['resnet50'\]"):
        validate(tiny_params)


PUBLISHED_PRESET = yaml.safe_load((ROOT / "workflow/presets/published.yaml").read_text())


@pytest.mark.parametrize("pretrained", [{"lr": 0.005, "epochs": 0},
                                        PUBLISHED_PRESET["train"]["pretrained"]],
                         ids=["evaluated", "published-preset"])
def test_the_default_starts_from_published_weights_and_the_learned_run_from_it(
        tmp_path, tiny_params, monkeypatch, restore_logging, pretrained):
    """The train stage, as both engines run it, on a tiny ImageNet-layout set: the default
    of a backbone with published weights evaluates them (0 epochs: its checkpoint is the
    file's weights) or fine-tunes them as the published preset says, then the learned run
    fine-tunes from that checkpoint."""
    monkeypatch.chdir(tmp_path)
    generate(SynthSpec(classes=CLASSES, train_per_class=6, val_per_class=3, min_side=40,
                       max_side=56, fine_cycles=(13, 16), fine_amplitude=(0.12, 0.2),
                       nuisance_cycles=(3, 8), nuisance_amplitude=(0.03, 0.12),
                       jpeg_quality=90), tmp_path / "synth")
    wnids, manifests = scan_tree(tmp_path / "synth")
    write_manifests(tmp_path / "manifests", {**manifests,
                                             "classes": pd.DataFrame({"wnid": wnids})})
    weights = write_weights(tmp_path / "published.pth")
    params = with_weights(tiny_params, weights)
    params["train"]["pretrained"] = pretrained
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    def train(mode: str, *extra: str) -> dict:
        status = cli.main(["train", "--task", "classification", "--backbone", BACKBONE,
                           "--mode", mode, "--seed", "0", "--manifests", "manifests",
                           "--out", f"runs/{mode}", "--metrics", f"metrics/{mode}.json",
                           "--live", f"live/{mode}.csv", *extra, "--log-file", f"{mode}.log"])
        assert status == 0, Path(f"{mode}.log").read_text()
        return yaml.safe_load(Path(f"metrics/{mode}.json").read_text())

    default = train("default")
    epochs = pretrained["epochs"]
    assert (default["weights"], default["epochs"]) == (str(weights), epochs)
    assert (default["train_loss"] is None) == (epochs == 0)
    if epochs == 0:  # judged by its test metric alone: it has no training loss to diverge
        assert default["health"] in ("ok", "at chance")
    assert any("adopted" in line for line in default["weights_overrides"])
    saved = load_checkpoint(Path("runs/default/model.pt"))["state_dict"]
    published = torch.load(weights)
    same = [torch.equal(saved[f"backbone.{key}"], value) for key, value in published.items()]
    assert all(same) if epochs == 0 else not all(same)  # evaluated as is, or fine-tuned
    assert f"from published weights ({weights})" in Path("default.log").read_text()
    live = pd.read_csv("live/default.csv")  # what both engines declare, even at 0 epochs
    history = pd.read_csv("runs/default/history.csv")
    assert live.equals(history) and list(history["epoch"]) == list(range(
        0 if epochs == 0 else 1, epochs + 1))

    learned = train("learned", "--init", "runs/default/model.pt")
    assert learned["init"] == f"classification/{BACKBONE}/default"
    assert learned["weights"] == str(weights) and learned["epochs"] == 1


def test_only_the_backbones_runs_depend_on_its_weights_file(tiny_params, tmp_path):
    """A weights file's MD5 and train.pretrained are in the digests of that backbone's
    training jobs only: replacing the file reruns them, and nothing of another backbone."""
    from pipeline.dag.plan import digests, jobs

    params = with_weights(tiny_params, write_weights(tmp_path / "w.pth"))
    params["classification"]["backbones"].append("resnet_tiny")
    before = copy.deepcopy(digests(jobs(params).values(), params))
    write_weights(tmp_path / "w.pth", seed=2)
    params["train"]["pretrained"] = {"lr": 0.01, "epochs": 0}  # scratch runs ignore it
    after = digests(jobs(params).values(), params)
    changed = {c["job"] for path, c in after.items() if before[path] != c
               and c["command"].startswith("python -m pipeline train ")}
    ours = {c["job"] for c in after.values() if f"/{BACKBONE}/" in c["command"] and
            c["command"].startswith("python -m pipeline train ")}
    assert changed == ours and ours
    assert all("weights" not in c for c in after.values() if "/resnet_tiny/" in c["command"])
