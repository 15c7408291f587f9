"""Invalid configuration stops everything with a message naming key, value and what is allowed."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import yaml

from pipeline.models import RESIZERS, TRAINABLE
from pipeline.params.config import ConfigError, load_params, lookup, validate
from pipeline.params.runs import FAMILY_NAMES, Ref, all_runs, get_run
from tests.conftest import ROOT, deep_merge

#: The default's second classification backbone (transfer pairs and other backbones' checks).
SECOND = yaml.safe_load((ROOT / "params.yaml").read_text())["classification"]["backbones"][1]


def error_of(params) -> str:
    with pytest.raises(ConfigError) as info:
        validate(params)
    return str(info.value)


def test_repository_params_are_valid(params):
    validate(params)


@pytest.mark.parametrize("overlay, expected", [
    ({"r": 0}, ["r = 0", "minimum=1"]),
    ({"n": -3}, ["n = -3", "minimum=1"]),
    ({"r": "two"}, ["r = 'two'", "integer"]),
    ({"train": {"scratch": {"lr": "fast"}}}, ["train.scratch.lr = 'fast'", "number"]),
    ({"loader": {"kind": "ffcv"}}, ["loader.kind = 'ffcv'", "auto, dali, torch"]),
    ({"classification": {"learned": {"learned": {"input_size": 2}}}},
     ["classification.learned.learned.input_size = 2", "minimum=8"]),
])
def test_bad_values_name_key_value_and_allowed(params, overlay, expected):
    message = error_of(deep_merge(params, overlay))
    for fragment in expected:
        assert fragment in message, message


def test_unknown_key_is_named_with_allowed_keys(params):
    params["loader"]["batchsize"] = 32
    message = error_of(params)
    assert "unknown key 'loader.batchsize'" in message and "batch_size" in message


def test_unknown_top_level_key(params):
    params["resizers"] = {"r": 2}
    assert "unknown key 'resizers'" in error_of(params)


def test_missing_key(params):
    del params["seed"]
    assert "'seed' is a required property" in error_of(params)


def test_missing_data_path(params, tmp_path):
    params["data"]["imagenet"]["root"] = str(tmp_path / "no-imagenet-here")
    message = error_of(params)
    assert "data.imagenet.root" in message and "does not exist" in message


def test_unknown_backbone(params):
    from pipeline.models import check_models

    params["classification"]["backbones"] = ["resnet_tiny", "resnet5O"]
    with pytest.raises(ConfigError) as info:
        check_models(params)
    assert "'resnet5O' is not a timm model" in str(info.value)


def test_unknown_fixed_resizer_names_the_registered_ones(params):
    from pipeline.models import check_models

    params["classification"]["baselines"]["default"]["resizer"] = "lanczos"
    with pytest.raises(ConfigError) as info:
        check_models(params)
    assert "'lanczos' is not a registered fixed resizer" in str(info.value)
    assert "bilinear_noaa" in str(info.value)


@pytest.mark.parametrize("resizer", sorted(set(RESIZERS) - TRAINABLE))
def test_a_fixed_mode_at_one_size_needs_a_resizer_the_loaders_apply(params, resizer):
    """At input_size = model_size the model resizes nothing and the loaders' kernel is the
    whole resize: a resizer registered without one (an in-model resizer) is refused there,
    accepted below the input size; the loaders resize with a run's own kernel where it has
    one, else bilinear (the run's model does the rest)."""
    from pipeline.models import LOADER_KERNELS, PLAIN_KERNEL, check_models, loader_kernel
    from pipeline.training.model import loader_spec

    params["classification"]["baselines"]["odd"] = {"resizer": resizer, "input_size": 32}
    run = get_run(params, "classification", "resnet_tiny", "odd", 0)
    spec = loader_spec(run, params["loader"], train=True, seed=0)
    assert spec.interpolation == loader_kernel(resizer) == LOADER_KERNELS.get(resizer,
                                                                              PLAIN_KERNEL)
    if resizer in LOADER_KERNELS:
        check_models(params)
        return
    with pytest.raises(ConfigError) as info:
        check_models(params)
    assert f"classification.baselines.odd.resizer = {resizer!r} runs inside the model" in \
        str(info.value)
    params["classification"]["baselines"]["odd"].update(input_size=64, model_size=32)
    check_models(params)


def test_learned_mode_kind_picks_a_trainable_resizer(params):
    from pipeline.models import TRAINABLE, check_models

    params["classification"]["learned"]["lml"] = {"input_size": 64, "kind": "muller"}
    run = get_run(params, "classification", "resnet_tiny", "lml", 0)
    assert (run.resizer, run.family, run.r, run.n) == ("muller", "learned", None, None)
    assert get_run(params, "classification", "resnet_tiny", "learned", 0).resizer == "learned"
    check_models(params)
    params["classification"]["learned"]["lml"]["kind"] = "bilinear"  # registered, not trainable
    with pytest.raises(ConfigError) as info:
        check_models(params)
    assert "classification.learned.lml.kind = 'bilinear' is not a registered trainable" in \
        str(info.value)
    assert all(name in str(info.value) for name in TRAINABLE)


def test_default_baseline_required(params):
    del params["classification"]["baselines"]["default"]
    assert "'default' is a required property" in error_of(params)


def test_mode_names_must_be_unique(params):
    params["classification"]["learned"]["bilinear_hr"] = {"input_size": 64}
    assert "bilinear_hr" in error_of(params)


def test_inverted_range(params):
    params["loader"]["train_scale"] = [0.9, 0.2]
    assert "loader.train_scale = [0.9, 0.2]" in error_of(params)


def test_every_problem_is_reported_at_once(params):
    params["r"], params["n"] = 0, -3
    message = error_of(params)
    assert "r = 0" in message and "n = -3" in message


def test_runs_follow_configuration(params):
    params["seeds"], params["ablation"]["seeds"] = [0, 1], [0]
    params["ablation"]["classification"] = ["resnet_tiny"]
    params["transfer"]["classification"] = [{"source": "resnet_tiny",
                                             "target": SECOND}]
    runs = all_runs(params)
    assert runs[0].name == "classification/resnet_tiny/default/seed0"
    assert {r.seed for r in runs} == set(params["seeds"])
    learned = get_run(params, "classification", "resnet_tiny", "learned", 0)
    assert (learned.resizer, learned.input_size, learned.model_size, learned.init) == (
        "learned", 64, params["classification"]["model_size"],
        Ref("classification", "resnet_tiny", "default"))
    hr = get_run(params, "classification", "resnet_tiny", "bilinear_hr", 1)
    assert hr.model_size == hr.input_size == 64 and hr.init is None and hr.seed == 1
    iqa = get_run(params, "iqa", "resnet_tiny", "default", 0)
    assert iqa.init == Ref("classification", "resnet_tiny", "default") and iqa.resizer == "bicubic"
    pair = params["transfer"]["classification"][0]
    transfer = get_run(params, "classification", pair["target"], f"from_{pair['source']}", 0)
    assert transfer.resizer_init == Ref("classification", pair["source"], "learned")
    assert transfer.init == Ref("classification", pair["target"], "default")
    joint = get_run(params, "classification", "resnet_tiny", "learned_scratch", 1)
    assert (joint.family, joint.init, joint.resizer, joint.input_size) == ("joint", None,
                                                                          "learned", 64)
    noaa = get_run(params, "classification", "resnet_tiny", "bilinear_noaa", 0)
    assert (noaa.input_size, noaa.model_size, noaa.init) == (64, 32, None)
    warm = {m: get_run(params, "classification", "resnet_tiny", m, 1)
            for m in ("learned_warm", "band_energy_continued")}
    assert {(r.family, r.resizer, r.input_size, r.model_size, r.init, r.epochs, r.trains_resizer)
            for r in warm.values()} == {
        ("warm", resizer, 64, 32, Ref("classification", "resnet_tiny", "band_energy"),
         params["classification"]["warm"]["epochs"], learned)
        for resizer, learned in (("learned", True), ("band_energy", False))}
    assert not [r for r in runs if r.family == "warm" and r.backbone not in
                params["classification"]["warm"]["backbones"]]
    cell = get_run(params, "classification", "resnet_tiny", "r2_n8", 0)
    assert (cell.r, cell.n, cell.family) == (2, 8, "ablation")
    ablation_seeds = {r.seed for r in runs if r.family == "ablation"}
    assert ablation_seeds == set(params["ablation"]["seeds"]) < set(params["seeds"])
    with pytest.raises(ConfigError, match="seeds"):  # the grid is not trained for seed 1
        get_run(params, "classification", "resnet_tiny", "r2_n8", 1)
    with pytest.raises(ConfigError, match="configured runs"):
        get_run(params, "classification", "resnet_tiny", "nope", 0)
    with pytest.raises(ConfigError, match="seeds"):
        get_run(params, "classification", "resnet_tiny", "default", 99)
    assert lookup(params, "classification.baselines.bilinear_hr.input_size") == 64


@pytest.mark.parametrize("edit, expected", [
    (lambda p: p["iqa"]["backbones"].append("resnet50"), "not in classification.backbones"),
    (lambda p: p["transfer"]["classification"].append({"source": "resnet_tiny",
                                                        "target": "resnet_tiny"}),
     "two different backbones"),
    (lambda p: p["transfer"]["classification"].append({"source": "resnet_tiny",
                                                        "target": "densenet121"}),
     "not in classification.backbones"),
    (lambda p: (p["transfer"].update(mode="nope"), p["transfer"]["classification"].append(
        {"source": "resnet_tiny", "target": SECOND})),
     "not a mode of classification.learned"),
    (lambda p: p["ablation"]["iqa"].append(SECOND), "not in iqa.backbones"),
    (lambda p: p["ablation"]["seeds"].append(7), "ablation.seeds [7] are not in seeds"),
    (lambda p: p["figures"].update(seed=7), "figures.seed = 7 is not in seeds"),
    # the resizer maps input_size to model_size and never enlarges
    (lambda p: p["classification"].update(model_size=128),
     "classification.model_size = 128 exceeds classification.learned.learned.input_size = 64"),
    (lambda p: p["classification"]["baselines"]["band_energy"].update(model_size=96),
     "classification.baselines.band_energy.model_size = 96 exceeds "
     "classification.baselines.band_energy.input_size = 64"),
    (lambda p: (p["transfer"].update(input_size=16), p["transfer"]["classification"].append(
        {"source": "resnet_tiny", "target": SECOND})),
     "classification.model_size = 32 exceeds transfer.input_size = 16"),
    (lambda p: p["ablation"].update(input_size=16, classification=["resnet_tiny"]),
     "classification.model_size = 32 exceeds ablation.input_size = 16"),
    (lambda p: p["resizer_params"].update(output_size=400), "a resizer never enlarges"),
    (lambda p: p["classification"]["warm"].update({"from": "learned"}),
     "classification.warm.from = 'learned' is not a baseline of classification"),
    (lambda p: p["classification"]["warm"]["modes"]["learned_warm"].update(epochs=3),
     "classification.warm.modes ['learned_warm'] set epochs"),
    (lambda p: p["classification"]["warm"]["backbones"].append("resnet50"),
     "classification.warm.backbones ['resnet50'] are not in classification.backbones"),
    (lambda p: p["iqa"].update(warm=p["classification"]["warm"]), "iqa.warm.modes "
     "['band_energy_continued', 'learned_warm']: the warm family is classification only"),
    (lambda p: p["attenuated"].update(joint=p["classification"]["joint"]), "attenuated.joint "
     "['learned_scratch']: the joint family is classification only; remove attenuated.joint"),
    (lambda p: p["attenuated"].update(weights={"resnet_tiny": "timm"}),
     "attenuated.weights ['resnet_tiny']: published weights are set per backbone in "
     "classification.weights"),
    (lambda p: p["classification"]["warm"]["modes"]["learned_warm"].update(input_size=16),
     "classification.model_size = 32 exceeds classification.warm.modes.learned_warm.input_size"),
    (lambda p: p["classification"]["warm"]["modes"]["band_energy_continued"].update(
        model_size=96), "classification.warm.modes.band_energy_continued.model_size = 96 "
     "exceeds classification.warm.modes.band_energy_continued.input_size = 64"),
    (lambda p: p["classification"]["warm"]["modes"].update(default={"input_size": 64}),
     "mode name(s) ['default'] used twice"),
])
def test_run_definitions_are_checked(params, edit, expected):
    edit(params)
    assert expected in error_of(params)


def test_every_training_job_starts_from_the_checkpoints_of_its_run(params):
    """Each training job's --init / --resizer-init (the plan's stage templates) is the
    checkpoint of its run's init / resizer_init (the runs), in every family."""
    from pipeline.dag.plan import jobs
    from pipeline.params.runs import checkpoint_of

    params["transfer"]["classification"] = [{"source": "resnet_tiny",
                                             "target": SECOND}]
    families = set()
    for job in jobs(params).values():
        if job.run is None:
            continue
        task, backbone, mode, seed = job.run
        run = get_run(params, task, backbone, mode, int(seed))
        families.add(run.family)
        args = list(job.args)
        for flag, ref in (("--init", run.init), ("--resizer-init", run.resizer_init)):
            given = args[args.index(flag) + 1] if flag in args else None
            assert given == (str(checkpoint_of(ref, seed)) if ref else None), (job.name, flag)
    assert families == set(FAMILY_NAMES)


def run_stage(tmp_path, params, *args):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return subprocess.run([sys.executable, "-m", "pipeline", *args, "--params", str(path)],
                          cwd=ROOT, capture_output=True, text=True)


def test_stage_refuses_bad_config_before_working(params, tmp_path):
    params["n"] = -3
    out = tmp_path / "synthetic"
    result = run_stage(tmp_path, params, "synth-imagenet", "--out", str(out))
    assert result.returncode == 2
    assert "n = -3" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_load_params_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_params(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("r: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def test_snakemake_refuses_bad_config(tmp_path):
    """Snakemake validates at parse time with the project's own message (not jsonschema's
    dump of the schema): no job starts."""
    for rel in ("Snakefile", "workflow", "pipeline"):
        (shutil.copytree if (ROOT / rel).is_dir() else shutil.copy)(ROOT / rel, tmp_path / rel)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["r"] = 0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run([str(ROOT / ".venv/bin/snakemake"), "-n"], cwd=tmp_path,
                            capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "r = 0 is invalid" in output and "minimum=1" in output
    assert "On instance" not in output and "Building DAG" not in output


def test_missing_ava_path(params, tmp_path):
    params["data"]["ava"]["root"] = str(tmp_path / "no-ava")
    message = error_of(params)
    assert "data.ava.root" in message and "AVA.txt" in message


def test_extract_to_inside_root(params, tmp_path):
    params["data"]["imagenet"]["root"] = str(tmp_path)
    params["data"]["imagenet"]["extract_to"] = str(tmp_path / "extracted")
    assert "lies inside data.imagenet.root" in error_of(params)


def test_synthetic_ava_ranges_ordered(params):
    params["synthetic"]["ava"]["votes"] = [500, 80]
    assert "synthetic.ava.votes = [500, 80]" in error_of(params)


@pytest.mark.parametrize("layout, make, expected", [
    ("auto", lambda root: None, "is empty: put ImageNet there"),
    ("auto", lambda root: (root / "notes.txt").write_text("x"), "holds neither layout"),
    ("tree", lambda root: (root / "train").mkdir(), "has no extracted tree (layout: tree"),
    ("archives", lambda root: (root / "ILSVRC2012_img_train.tar").write_bytes(b""),
     "lacks ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar, ILSVRC2012_devkit_t12.tar.gz"),
])
def test_an_imagenet_root_that_cannot_be_prepared_is_refused_up_front(params, tmp_path, layout,
                                                                     make, expected):
    root = tmp_path / "imagenet"
    root.mkdir()
    make(root)
    params["data"]["imagenet"].update(root=str(root), layout=layout,
                                      extract_to=str(tmp_path / "extracted"))
    assert expected in error_of(params)


def test_an_ava_root_without_ava_is_refused_up_front(params, tmp_path):
    (tmp_path / "ava" / "images").mkdir(parents=True)
    (tmp_path / "ava" / "AVA.txt").write_text("1 953619 0 1 2 3 4 5 6 7 8 9 0 0 1\n")
    params["data"]["ava"]["root"] = str(tmp_path / "ava")
    assert "does not hold AVA: it needs a non-empty AVA.txt and images/<id>.jpg" in error_of(params)


def test_the_archive_names_are_torchvisions():
    from pipeline.data.archives import ARCHIVES
    from pipeline.params.config import IMAGENET_ARCHIVES

    assert set(IMAGENET_ARCHIVES) == {name for name, _ in ARCHIVES.values()}


def leaves(node, path=()):
    """(key path, value) of every scalar of a params tree (list items by index)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from leaves(value, (*path, i))
    else:
        yield path, node


def perturbed(value):
    """Another value of the same type (None: leave this one alone)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 1.5 + 0.01
    if isinstance(value, str):
        return value + "_x"
    return None


def test_every_params_key_a_run_reads_is_in_its_jobs_digest(params):
    """Found by effect, not listed: each scalar of params.yaml is changed in turn, and every
    run whose fields change must have that key (or a section holding it) among the params its
    training job's digest holds; else `dvc repro` and Snakemake would not rerun it."""
    import copy

    from pipeline.dag.plan import jobs

    params["transfer"]["classification"] = [{"source": "resnet_tiny",
                                             "target": SECOND}]
    digests = {tuple(map(str, job.run)): set(job.params)
               for job in jobs(params).values() if job.run}
    before = {tuple(map(str, r.coordinates)): r for r in all_runs(params)}
    checked, missing = 0, set()
    for path, value in leaves(params):
        new = perturbed(value)
        if new is None:
            continue
        edited = copy.deepcopy(params)
        node = edited
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = new
        key = ".".join(str(p) for p in path if not isinstance(p, int))
        try:
            after = {tuple(map(str, r.coordinates)): r for r in all_runs(edited)}
        except (KeyError, ValueError, ConfigError):
            continue  # a value the runs cannot be built from (validation refuses it first)
        for coords, run in after.items():
            if coords in before and run != before[coords]:
                checked += 1
                if not any(key == p or key.startswith(p + ".") for p in digests[coords]):
                    missing.add((key, "/".join(coords[:3])))
    assert checked > 100  # the test changes runs, it does not pass by finding nothing
    assert not missing, sorted(missing)
