"""The paper-scale preset: merged into params.yaml in one step, validated before writing, and
listing the paper's whole grid on three seeds: classification (4 backbones x 5 resizer modes,
plus EfficientNet-B0's ImageNet models for IQA), IQA on AVA (3 backbones x 4 modes),
cross-backbone transfers and the r x n ablation."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from pipeline.params.config import ConfigError, validate
from pipeline.params.runs import Ref, all_runs, get_run, runs_of
from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("apply_preset",
                                              ROOT / "workflow/scripts/apply_preset.py")
apply_preset = importlib.util.module_from_spec(spec)
spec.loader.exec_module(apply_preset)

SEEDS = [0, 1, 2]
PAPER_BACKBONES = ["bninception", "densenet121", "resnet50", "mobilenetv2_100",
                   "efficientnet_b0"]
IQA_BACKBONES = ["bninception", "densenet121", "efficientnet_b0"]
# mode -> (family, resizer, input_size, model_size, (task, mode) of the run it starts from)
PAPER_MODES = {"default": ("baseline", "bilinear", 224, 224, None),
               "bilinear_hr": ("baseline", "bilinear", 256, 256, None),
               "bilinear_continued": ("fixed", "bilinear", 224, 224, ("classification", "default")),
               "learned": ("learned", "learned", 368, 224, ("classification", "default")),
               "learned_equal": ("learned", "learned", 224, 224, ("classification", "default")),
               "muller": ("learned", "muller", 368, 224, ("classification", "default")),
               "bilinear_noaa": ("baseline", "bilinear_noaa", 368, 224, None),
               "band_energy": ("baseline", "band_energy", 368, 224, None),
               "learned_scratch": ("joint", "learned", 368, 224, None)}
IQA_MODES = {"default": ("baseline", "bicubic", 224, 224, ("classification", "default")),
             "bicubic_hr": ("baseline", "bicubic", 256, 256, ("classification", "default")),
             "bicubic_continued": ("fixed", "bicubic", 224, 224, ("iqa", "default")),
             "learned": ("learned", "learned", 368, 224, ("iqa", "default"))}
# task -> (source, target) backbones whose resizers are transferred
TRANSFERS = {"classification": [("resnet50", "densenet121"), ("densenet121", "resnet50"),
                                ("bninception", "resnet50")],
             "iqa": [("bninception", "densenet121"), ("densenet121", "bninception")]}
# warm mode -> (resizer, input_size, model_size); from band_energy, resnet50 only
WARM_MODES = {"learned_warm": ("learned", 368, 224),
              "band_energy_continued": ("band_energy", 368, 224)}
ABLATION = {"r": [1, 2, 3, 4], "n": [16, 32], "classification": ["resnet50"],
            "iqa": ["bninception"]}


@pytest.fixture
def repo_params(tmp_path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    return path


def dataset_roots(where: Path) -> tuple[Path, Path]:
    """ImageNet and AVA roots that exist and hold their layouts (nothing here reads an
    image)."""
    imagenet, ava = where / "imagenet", where / "ava"
    for split in ("train", "val"):
        (imagenet / split / "n01440764").mkdir(parents=True)
        (imagenet / split / "n01440764" / "x.JPEG").write_bytes(b"x")
    (ava / "images").mkdir(parents=True)
    (ava / "images" / "1.jpg").write_bytes(b"x")
    (ava / "AVA.txt").write_text("1 1 0 0 0 0 1 0 0 0 0 0 0 0 1\n")
    return imagenet, ava


@pytest.fixture
def datasets(tmp_path) -> list[str]:
    """Dataset roots, as --set overrides."""
    dataset_roots(tmp_path)
    return [f"data.imagenet.root={tmp_path / 'imagenet'}", f"data.ava.root={tmp_path / 'ava'}"]


def test_paper_preset_is_valid_and_lists_the_whole_grid(repo_params, datasets):
    merged = yaml.safe_load(apply_preset.apply_preset("paper", repo_params, datasets))
    validate(merged)
    assert merged["seeds"] == SEEDS

    runs = [r for r in runs_of(merged, "classification")
            if r.family in ("baseline", "fixed", "learned", "joint")]
    assert len(runs) == len(SEEDS) * 5 * len(PAPER_MODES)
    for seed in SEEDS:
        of_seed = [r for r in runs if r.seed == seed]
        assert [r.backbone for r in of_seed[::len(PAPER_MODES)]] == PAPER_BACKBONES
        assert {(r.backbone, r.mode) for r in of_seed} == {
            (b, m) for b in PAPER_BACKBONES for m in PAPER_MODES}
    for run in runs:
        family, resizer, input_size, model_size, init = PAPER_MODES[run.mode]
        assert (run.family, run.resizer, run.input_size, run.model_size) == (
            family, resizer, input_size, model_size), run
        assert run.init == (Ref(init[0], run.backbone, init[1]) if init else None), run
        # the paper's lr at its reference batch (256), scaled to the preset's batch (128)
        lr, epochs = (0.005, 10) if init else (0.05, 100 if run.family == "joint" else 90)
        assert (run.lr, run.epochs) == (lr * 128 / 256, epochs), run

    iqa = [r for r in runs_of(merged, "iqa") if r.family in ("baseline", "fixed", "learned")]
    assert len(iqa) == len(SEEDS) * 12
    assert {(r.backbone, r.mode, r.seed) for r in iqa} == {
        (b, m, s) for b in IQA_BACKBONES for m in IQA_MODES for s in SEEDS}
    for run in iqa:
        family, resizer, input_size, model_size, (task, mode) = IQA_MODES[run.mode]
        assert (run.family, run.resizer, run.input_size, run.model_size) == (
            family, resizer, input_size, model_size), run
        assert run.init == Ref(task, run.backbone, mode) and (run.lr, run.epochs) == (0.0025, 10)

    transfers = runs_of(merged, "classification", "transfer") + runs_of(merged, "iqa", "transfer")
    assert {(r.task, r.resizer_init.backbone, r.backbone, r.seed) for r in transfers} == {
        (task, source, target, s) for task, pairs in TRANSFERS.items()
        for source, target in pairs for s in SEEDS}
    for run in transfers:
        assert run.mode == f"from_{run.resizer_init.backbone}"
        assert run.init == Ref(run.task, run.backbone, "default")
        assert run.resizer_init == Ref(run.task, run.resizer_init.backbone, "learned")
        assert (run.resizer, run.input_size, run.model_size, run.lr, run.epochs) == (
            "learned", 368, 224, 0.0025, 5)

    ablation = runs_of(merged, "classification", "ablation") + runs_of(merged, "iqa", "ablation")
    assert {(r.task, r.backbone, r.r, r.n, r.seed) for r in ablation} == {
        (task, b, r, n, s) for task in ("classification", "iqa") for b in ABLATION[task]
        for r in ABLATION["r"] for n in ABLATION["n"] for s in SEEDS}
    for run in ablation:
        assert run.mode == f"r{run.r}_n{run.n}" and run.init == Ref(run.task, run.backbone,
                                                                     "default")
        assert (run.input_size, run.model_size, run.lr, run.epochs) == (368, 224, 0.0025, 10)

    warm = runs_of(merged, "classification", "warm")
    assert {(r.backbone, r.mode, r.seed) for r in warm} == {
        ("resnet50", m, s) for m in WARM_MODES for s in SEEDS}
    for run in warm:
        assert (run.resizer, run.input_size, run.model_size) == WARM_MODES[run.mode]
        assert run.init == Ref("classification", "resnet50", "band_energy")
        assert (run.lr, run.epochs) == (0.0025, 10)

    everything = all_runs(merged)
    assert len(everything) == len(SEEDS) * (5 * len(PAPER_MODES) + 12 + 5 + 16 + 2)
    assert len({r.name for r in everything}) == len(everything)
    for run in everything:  # every run starts from runs of its own seed that the grid has
        for ref in filter(None, (run.init, run.resizer_init)):
            assert get_run(merged, ref.task, ref.backbone, ref.mode, run.seed).family in (
                "baseline", "learned")

    sgd = merged["train"]["sgd"]
    assert (sgd["label_smoothing"], sgd["momentum"], sgd["lr_decay"],
            sgd["lr_decay_epochs"]) == (0.1, 0.9, 0.94, 2)
    assert merged["data"]["imagenet"]["expect_official"] is True
    assert merged["data"]["ava"]["split"] == "official"
    # keys the preset does not mention keep the repository's values
    original = yaml.safe_load(repo_params.read_text())
    assert merged["resizer_params"] == original["resizer_params"]
    assert merged["synthetic"] == original["synthetic"]
    assert merged["figures"] == original["figures"]
    assert (merged["r"], merged["n"]) == (original["r"], original["n"])


def comment_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("#")]


def test_written_in_one_step_with_block_style_and_comments(repo_params, datasets, capsys):
    before = comment_lines(repo_params.read_text())
    assert apply_preset.main(["paper", "--params", str(repo_params),
                              *(a for s in datasets for a in ("--set", s))]) == 0
    text = repo_params.read_text()
    assert "# Learned-resizer knobs in the paper's notation" in text  # comments kept
    # all of them, in order, including those after a replaced list (ruamel ties them to its
    # last item): the one opening `synthetic` follows `seeds`
    assert comment_lines(text) == before
    assert "- 2\n\n# Embedded synthetic benchmark" in text
    # lists in block style (an empty one has none: the second regime's backbones)
    assert "[" not in text.split("classification:")[1].replace("backbones: []", "")
    assert "\n  backbones:\n  - bninception\n  - densenet121\n" in text
    # sections that were empty flow collections (`fixed: {}`, `iqa: []`) come out in block style
    assert "fixed: {}" not in text and "iqa: []" not in text
    assert "\n  fixed:\n    bicubic_continued:\n      resizer: bicubic\n" in text
    written = yaml.safe_load(text)
    assert written["classification"]["backbones"] == PAPER_BACKBONES
    assert written["iqa"]["backbones"] == IQA_BACKBONES and written["seeds"] == SEEDS
    assert [(p["source"], p["target"]) for p in written["transfer"]["iqa"]] == TRANSFERS["iqa"]


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
    """With the preset applied, DVC's stages and Snakemake's jobs are the whole grid, every
    run once per seed: classification 5 backbones x (4 baselines + 1 fixed + 3 learned + 1
    joint) and resnet50's 2 warm modes, IQA 3 x (2 + 1 + 1), 3 + 2 transfers and 2 x 8
    ablation cells."""
    import subprocess
    import sys

    from tests.dags import snakemake_needrun
    from tests.projects import project_copy, sh

    imagenet, ava = dataset_roots(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    project_copy(project, yaml.safe_load((ROOT / "params.yaml").read_text()))
    subprocess.run([sys.executable, "workflow/scripts/apply_preset.py", "paper", "--set",
                    f"data.imagenet.root={imagenet}", "--set", f"data.ava.root={ava}"],
                   cwd=project, check=True, capture_output=True)
    expected = {f"train-{family}@{b}-{m}-{s}" for b in PAPER_BACKBONES
                for m, (family, *_) in PAPER_MODES.items() for s in SEEDS}
    expected |= {f"iqa-{family}@{b}-{m}-{s}" for b in IQA_BACKBONES
                 for m, (family, *_) in IQA_MODES.items() for s in SEEDS}
    expected |= {f"train-warm@resnet50-{m}-{s}" for m in WARM_MODES for s in SEEDS}
    expected |= {f"transfer-{task}@pair{i}-{s}" for task, pairs in TRANSFERS.items()
                 for i in range(len(pairs)) for s in SEEDS}
    expected |= {f"ablation-{task}@{b}-{r}-{n}-{s}" for task in ("classification", "iqa")
                 for b in ABLATION[task] for r in ABLATION["r"] for n in ABLATION["n"]
                 for s in SEEDS}
    stages = sh(project, "dvc", "stage", "list", "--names-only").split()
    dvc_runs = {s for s in stages if "@" in s and s.startswith(("train-", "iqa-", "transfer-",
                                                               "ablation-"))}
    assert dvc_runs == expected
    assert not [s for s in stages if s.startswith("attenuated-")]  # the preset trains no regime 2
    smk_runs = {name for name in snakemake_needrun(project) if name.startswith(
        ("train-", "iqa-", "transfer-", "ablation-"))}
    assert smk_runs == expected, "Snakemake plans the same runs under the same names"


def test_the_published_route_layers_on_the_paper_preset(repo_params, datasets):
    """`apply_preset.py paper published`: timm's weights for every paper backbone that has
    them, their baselines one epoch from them, BN-Inception (none published) from scratch."""
    merged = yaml.safe_load(apply_preset.apply_preset(["paper", "published"], repo_params,
                                                      datasets))
    validate(merged)
    assert merged["classification"]["weights"] == {b: "timm" for b in PAPER_BACKBONES
                                                   if b != "bninception"}
    for run in runs_of(merged, "classification", "baseline"):
        published = run.backbone != "bninception"
        assert run.loads_weights == published and run.init is None, run
        assert run.epochs == (1 if published else 90), run
    learned = [r for r in runs_of(merged, "classification", "learned")]
    assert all(r.weights == ("timm" if r.backbone != "bninception" else None) and
               not r.loads_weights for r in learned)
