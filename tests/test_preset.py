"""The paper-scale preset: merged into params.yaml in one step, validated before writing, and
listing the paper's whole grid (4 backbones x 5 resizer modes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from pipeline.config import ConfigError, classification_runs, validate
from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("apply_preset",
                                              ROOT / "workflow/scripts/apply_preset.py")
apply_preset = importlib.util.module_from_spec(spec)
spec.loader.exec_module(apply_preset)

PAPER_BACKBONES = ["bninception", "densenet121", "resnet50", "mobilenetv2_100"]
PAPER_MODES = {"default": ("bilinear", 224, 224, None), "bilinear_hr": ("bilinear", 256, 256, None),
               "bilinear_continued": ("bilinear", 224, 224, "default"),
               "learned": ("learned", 368, 224, "default"),
               "learned_equal": ("learned", 224, 224, "default")}


@pytest.fixture
def repo_params(tmp_path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    return path


@pytest.fixture
def datasets(tmp_path) -> list[str]:
    """Dataset roots that exist, as --set overrides."""
    (tmp_path / "imagenet").mkdir()
    (tmp_path / "ava").mkdir()
    return [f"data.imagenet.root={tmp_path / 'imagenet'}", f"data.ava.root={tmp_path / 'ava'}"]


def test_paper_preset_is_valid_and_lists_the_whole_grid(repo_params, datasets):
    merged = yaml.safe_load(apply_preset.apply_preset("paper", repo_params, datasets))
    validate(merged)
    runs = classification_runs(merged)
    assert len(runs) == 20
    assert [r.backbone for r in runs[::5]] == PAPER_BACKBONES
    for run in runs:
        assert (run.resizer, run.input_size, run.model_size, run.init) == PAPER_MODES[run.mode]
    scratch = [r for r in runs if r.init is None]
    assert {r.lr for r in scratch} == {0.05} and {r.lr for r in runs if r.init} == {0.005}
    sgd = merged["train"]["sgd"]
    assert (sgd["label_smoothing"], sgd["momentum"], sgd["lr_decay"],
            sgd["lr_decay_epochs"]) == (0.1, 0.9, 0.94, 2)
    assert merged["data"]["imagenet"]["expect_official"] is True
    assert merged["data"]["ava"]["split"] == "official"
    # keys the preset does not mention keep the repository's values
    original = yaml.safe_load(repo_params.read_text())
    assert merged["resizer_params"] == original["resizer_params"]
    assert merged["synthetic"] == original["synthetic"]


def test_written_in_one_step_with_block_style_and_comments(repo_params, datasets, capsys):
    assert apply_preset.main(["paper", "--params", str(repo_params),
                              *(a for s in datasets for a in ("--set", s))]) == 0
    text = repo_params.read_text()
    assert "# Learned-resizer knobs in the paper's notation" in text  # comments kept
    assert "[" not in text.split("classification:")[1]  # lists in block style
    assert "\n  backbones:\n  - bninception\n  - densenet121\n" in text
    assert yaml.safe_load(text)["classification"]["backbones"] == PAPER_BACKBONES


def test_refuses_without_the_datasets_and_says_where_to_put_them(repo_params, capsys):
    before = repo_params.read_bytes()
    assert apply_preset.main(["paper", "--params", str(repo_params)]) == 2
    err = capsys.readouterr().err
    assert "data.imagenet.root = '/datasets/imagenet' does not exist" in err
    assert "data.ava.root = '/datasets/ava' does not exist" in err
    assert "ILSVRC2012_img_train.tar" in err and "AVA.txt" in err and "--set" in err
    assert repo_params.read_bytes() == before


@pytest.mark.parametrize("overrides, fragment", [
    (["classification.model_size=2"], "classification.model_size = 2"),
    (["loader.batchsize=3"], "unknown key 'loader.batchsize'"),
    (["nosuch.key=1"], "'nosuch' is not a section"),
])
def test_bad_overrides_are_refused(repo_params, datasets, overrides, fragment):
    before = repo_params.read_bytes()
    with pytest.raises(ConfigError) as info:
        apply_preset.apply_preset("paper", repo_params, [*datasets, *overrides])
    assert fragment in str(info.value)
    assert repo_params.read_bytes() == before


def test_unknown_preset_lists_the_available_ones(repo_params):
    with pytest.raises(ConfigError, match="available: paper"):
        apply_preset.apply_preset("papr", repo_params)


@pytest.mark.e2e
def test_dry_runs_of_both_engines_list_the_paper_grid(tmp_path):
    """With the preset applied, `dvc stage list` and `snakemake -n` plan the whole grid:
    4 backbones x (2 baselines + 1 fixed + 2 learned) training runs."""
    import subprocess
    import sys

    from tests.test_e2e import project_copy, sh

    imagenet, ava = tmp_path / "imagenet", tmp_path / "ava"
    imagenet.mkdir()
    ava.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    project_copy(project, yaml.safe_load((ROOT / "params.yaml").read_text()))
    subprocess.run([sys.executable, "workflow/scripts/apply_preset.py", "paper", "--set",
                    f"data.imagenet.root={imagenet}", "--set", f"data.ava.root={ava}"],
                   cwd=project, check=True, capture_output=True)
    expected = {f"{b}-{m}" for b in ("bninception", "densenet121", "resnet50", "mobilenetv2_100")
                for m in ("default", "bilinear_hr", "bilinear_continued", "learned",
                          "learned_equal")}
    stages = sh(project, "dvc", "stage", "list", "--names-only").split()
    dvc_runs = {s.split("@", 1)[1] for s in stages if s.startswith("train-")}
    assert dvc_runs == expected
    plan = sh(project, "snakemake", "-n", "--quiet", "rules")
    counts = {line.split()[0]: int(line.split()[1]) for line in plan.splitlines()
              if line.startswith("train_")}
    assert counts == {"train_baseline": 8, "train_fixed": 4, "train_learned": 8}, plan
