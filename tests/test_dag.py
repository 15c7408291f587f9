"""One plan, two engines: dvc.yaml is the plan rendered, the Snakefile the plan read, and the
two DAGs have the same jobs, commands, inputs and outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.cli import commands
from pipeline.dag import codehash, plan
from pipeline.dag.dvcyaml import render
from tests.dags import dvc_stages, snakemake_stages
from tests.projects import rename_module

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


@pytest.fixture(scope="module")
def dags() -> tuple[dict, dict]:
    return dvc_stages(ROOT), snakemake_stages(ROOT)


def test_dvc_yaml_is_the_plan_rendered(params):
    assert (ROOT / "dvc.yaml").read_text() == render(params), (
        "dvc.yaml differs from pipeline/dag/plan.py: run `make dvc.yaml` and commit it")


def test_dvc_draws_one_plot_per_curve_with_every_run(params):
    """Top-level plots only (a stage's `plots:` would draw each file alone): per task and
    curve, one plot overlaying every training run's per-epoch CSV, x = epoch."""
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert not any("plots" in stage for stage in dvc["stages"].values())
    plots = {name: spec for entry in dvc["plots"] for name, spec in entry.items()}
    assert len(plots) == sum(len(c) for c in plan.CURVES.values())
    live = {out for job in plan.jobs(params).values() for out in job.plots}
    fields = {f"{task}: {label}": field for task, curves in plan.CURVES.items()
              for field, label in curves}
    for name, spec in plots.items():
        task = name.split(":")[0]
        assert spec["x"] == "epoch" and set(spec["y"].values()) == {fields[name]}
        assert spec["template"] == "epochs", name
        assert set(spec["y"]) == {f for f in live if f"/live/{task}/" in f}, name


def test_the_epochs_plot_template_is_dvcs_linear_with_whole_epochs_and_full_names():
    """.dvc/plots/epochs.json: DVC's `linear` template (its placeholders kept) plus integer
    epoch ticks and legend labels never cut (the runs' file names are long)."""
    template = json.loads((ROOT / ".dvc" / "plots" / "epochs.json").read_text())
    assert template["config"] == {"legend": {"labelLimit": 0},
                                  "axisX": {"tickMinStep": 1, "format": "d"}}
    text = json.dumps(template)
    assert all(f"<DVC_METRIC_{name}>" in text for name in ("DATA", "X", "Y", "COLOR",
                                                           "STROKE_DASH"))


def test_dvc_plots_pages_use_the_projects_template():
    """`dvc plots show/diff` write their page through workflow/report/dvc_plots.html: UTF-8
    declared (DVC's default page has no charset, so a browser opening it from disk shows
    "…" and "−" as mojibake), DVC's placeholders kept, the offline alternative named."""
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    template = (ROOT / ".dvc" / config["plots"]["html_template"]).resolve()
    assert template == ROOT / "workflow" / "report" / "dvc_plots.html"
    text = template.read_text()
    assert '<meta charset="utf-8">' in text and "training_curves.png" in text
    assert all(f"{{{name}}}" in text for name in ("scripts", "plot_divs", "refresh_tag"))


def test_every_reported_table_and_figure_has_a_caption():
    """The Snakemake report shows each table and figure of the plan with its caption."""
    report = ROOT / "workflow/report"
    missing = [n for n in plan.REPORT_TABLES if not (report / f"table_{n}.rst").is_file()]
    assert set(plan.TABLES) <= set(plan.REPORT_TABLES)
    declared = {out for job in plan.jobs(yaml.safe_load((ROOT / "params.yaml").read_text()))
                .values() for out in job.outputs}
    assert set(plan.REPORT_TABLES.values()) <= declared, "a report table no stage writes"
    missing += [name for name in plan.FIGURES if not (report / f"{name}.rst").is_file()]
    assert not missing, f"no caption in workflow/report/ for {missing}"


def test_same_jobs_with_the_same_names(dags):
    dvc, smk = dags
    assert sorted(set(dvc) - {"plan"}) == sorted(smk), "the plan stage is a parse step in Snakemake"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert sorted(plan.jobs(params)) == sorted(smk), "the plan names jobs as DVC does"


@pytest.mark.parametrize("preset", [None, "paper"])
def test_captions_are_rendered_from_the_configuration(preset):
    """Every caption renders (Jinja, as Snakemake does) against params.yaml and the paper
    preset without a Python list repr, and the result tables' captions name every configured
    backbone and mode, so a caption cannot go stale when the configuration changes."""
    import types

    import jinja2

    from pipeline.stages.estimate import merged

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if preset is not None:
        params = merged(params, yaml.safe_load((ROOT / f"workflow/presets/{preset}.yaml")
                                               .read_text()))
    snakemake = types.SimpleNamespace(config=params)
    for caption in sorted((ROOT / "workflow/report").glob("*.rst")):
        text = jinja2.Template(caption.read_text(), undefined=jinja2.StrictUndefined).render(
            snakemake=snakemake)
        assert "['" not in text and "{'" not in text, f"{caption.name}: a Python repr"
        task = {"table_classification.rst": "classification", "table_iqa.rst": "iqa"}.get(
            caption.name)
        if task is not None:
            names = [*params[task]["backbones"]] + [
                mode for group in ("baselines", "fixed", "learned", "joint")
                for mode in params[task][group]]
            assert [n for n in names if n not in text] == [], caption.name


@pytest.mark.parametrize("field", ["cmd", "deps", "outs"])
def test_same_fields(dags, field):
    dvc, smk = dags
    drift = {}
    for name in sorted(smk):
        a, b = getattr(dvc[name], field), getattr(smk[name], field)
        if a != b:
            drift[name] = (a, b) if field == "cmd" else {"only in dvc.yaml": sorted(a - b),
                                                         "only in Snakefile": sorted(b - a)}
    assert not drift, f"{field} differs between dvc.yaml and the Snakefile: {drift}"


def test_the_only_metrics_file_is_the_summary_and_plots_are_per_epoch():
    assert [m for stage in plan.STAGES for m in stage.metrics] == [plan.SUMMARY]
    plots = [p for stage in plan.STAGES for p in stage.plots]
    assert plots and all(p.startswith("results/live/") and p.endswith(".csv") for p in plots)


def test_every_job_depends_on_its_digest_and_on_no_code_or_params(dags):
    dvc, _ = dags
    for name, stage in dvc.items():
        if name == "plan":
            continue
        digests = [d for d in stage.deps if d.startswith(f"{plan.PLAN_DIR}/")]
        assert len(digests) == 1, (name, digests)
        assert not [d for d in stage.deps if d.startswith(("pipeline", "params"))], name


#: Every pipeline module each stage imports when it runs (one interpreter for all of them:
#: the package's modules are dropped from sys.modules before each stage module is imported,
#: third-party ones stay, so torch is imported once).
RUNTIME_IMPORTS = """
import importlib, json, sys
found = {}
for command, module in json.loads(sys.argv[1]).items():
    for name in [m for m in sys.modules if m == "pipeline" or m.startswith("pipeline.")]:
        del sys.modules[name]
    importlib.import_module("pipeline.cli")
    importlib.import_module(module)
    found[command] = sorted(m for m in sys.modules if m == "pipeline" or m.startswith("pipeline."))
print(json.dumps(found))
"""


def test_code_hash_covers_every_module_a_stage_imports():
    """The ast closure holds at least what Python imports (it may hold more: lazy imports)."""
    modules = {c: plan.command_modules(c)[-1] for c in commands()}
    out = subprocess.run([PY, "-c", RUNTIME_IMPORTS, json.dumps(modules)], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    for command, imported in json.loads(out.splitlines()[-1]).items():
        closure = codehash.closure(plan.command_modules(command))
        missing = sorted(set(imported) - set(closure))
        assert not missing, f"{command}: imported but not hashed: {missing}"


def modules_of(folder: str) -> list[str]:
    """The modules of a folder of the package, by name."""
    return [".".join(path.with_suffix("").parts) for path in sorted((ROOT / folder).glob("*.py"))
            if path.name != "__init__.py" for path in [path.relative_to(ROOT)]]


def test_the_report_never_imports_the_training_loop():
    """The report (pipeline/report/ and every stage module that imports it) builds models
    and evaluates through training.model and training.evaluate, below the loop: editing the
    loop, resume or checkpoint-writing code reruns no table or figure."""
    stages = [m for m in modules_of("pipeline/stages")
              if "pipeline.report" in codehash.imports_of(m, codehash.module_file(m))]
    assert {"pipeline.stages.figures", "pipeline.stages.tables"} <= set(stages)
    figures = codehash.closure(["pipeline.stages.figures"])
    assert {"pipeline.training.model", "pipeline.training.evaluate"} <= set(figures)
    for module in [*modules_of("pipeline/report"), *stages]:
        closure = codehash.closure([module])
        assert "pipeline.training.loop" not in closure, module
        assert "pipeline.training.runner" not in closure, module


def test_at_most_eight_modules_at_the_top_of_the_package():
    """Everything else lives in a wing (a folder per concern)."""
    assert len(list((ROOT / "pipeline").glob("*.py"))) <= 8


def test_only_the_r_and_n_readers_read_r_and_n():
    """`dvc exp run -S r=2` reruns the stages of the families with learned modes (the family
    table's ``learned``: the warm start's fixed control with them, as it shares its family's
    stage) and the transfer runs, and of the rest only the report stages that load learned
    resizers; never the ablation grid (its r and n come from the matrix) or the fixed
    resizers' stages."""
    from pipeline.params.families import LEARNED
    from pipeline.params.runs import get_run

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    second = params["classification"]["backbones"][1]
    params["transfer"]["classification"] = [{"source": "resnet_tiny", "target": second}]
    readers, learned = set(), set()
    for job in plan.jobs(params).values():
        if {"r", "n"} & set(job.params):
            readers.add(job.stage.name)
        if job.run and get_run(params, *job.run[:3], int(job.run[3])).family in (
                *LEARNED, "transfer"):
            learned.add(job.stage.name)
    assert {"train-learned", "train-joint", "train-warm", "iqa-learned",
            "transfer-classification"} <= learned <= readers
    assert readers - learned == {"figures", "resizer-probe", "bench-loop"}


def test_snakemake_lint():
    result = subprocess.run([str(Path(PY).parent / "snakemake"), "--lint"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def copy_package(root: Path) -> Path:
    """A copy of the package's sources under ``root`` (what code_hash reads)."""
    import shutil

    shutil.copytree(ROOT / "pipeline", root / "pipeline",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage_hashes(root: Path) -> dict[str, str]:
    return {c: codehash.code_hash(plan.command_modules(c), root) for c in commands()}


@pytest.mark.parametrize("old, new", [
    ("pipeline.core.noise", "pipeline.report.noise"),   # a module to another wing
    ("pipeline.core", "pipeline.base"),                 # a whole wing renamed
    ("pipeline.training.evaluate", "pipeline.training.scoring"),  # a module renamed
])
def test_moving_code_changes_no_stage_digest_and_editing_it_changes_its_readers(
        tmp_path, old, new):
    """A pure move (the files' contents the same but for the imports that follow them) reruns
    no stage; a real edit of the moved code afterwards reruns exactly the stages that import
    it. Files are hashed by content and each import by the content it names, not by path."""
    root = copy_package(tmp_path)
    before = stage_hashes(root)
    rename_module(root, old, new)
    imported = {name for path in (root / "pipeline").rglob("*.py")
                for name in codehash.imports_of(module_name(root, path), path)}
    assert old not in imported and new in imported, "the move must fix every import"
    assert stage_hashes(root) == before
    moved = root.joinpath(*new.split("."))
    edited = moved / "noise.py" if moved.is_dir() else moved.with_suffix(".py")
    edited.write_text(edited.read_text() + "\nMARKER = 1\n")
    after = stage_hashes(root)
    module = module_name(root, edited)
    readers = {c for c in before if module in codehash.closure(plan.command_modules(c), root)}
    assert readers and readers != set(before), "the control needs readers and non-readers"
    assert {c for c in before if after[c] != before[c]} == readers


@pytest.mark.parametrize("before, after", [
    ("from pipeline.core.noise import mean_se", "from pipeline.extra.noise import mean_se"),
    ("from pipeline.core import noise", "from pipeline.extra import noise"),  # a submodule
])
def test_which_module_an_import_names_counts(tmp_path, before, after):
    """Two modules may hold the same names: importing from the other one is a change, even
    though the closure holds the same files and both packages' ``__init__`` are alike."""
    root = copy_package(tmp_path)
    (root / "pipeline/extra").mkdir()
    (root / "pipeline/extra/__init__.py").write_text('"""Another wing."""\n')
    noise = (root / "pipeline/core/noise.py").read_text()
    (root / "pipeline/extra/noise.py").write_text(noise + "\nOTHER = 2\n")
    user = root / "pipeline/report/user.py"
    user.write_text(f"{before}\n")
    modules = ["pipeline.report.user", "pipeline.core.noise", "pipeline.extra.noise"]
    hashed, files = codehash.code_hash(modules, root), codehash.closure(modules, root)
    user.write_text(f"{after}\n")
    assert codehash.closure(modules, root) == files  # the same files, wired otherwise
    assert codehash.code_hash(modules, root) != hashed
