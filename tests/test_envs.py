"""Every way to install the project carries the same pins as uv.lock."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from workflow.scripts.conda_envs import PYTHON, ROOT, TARGETS, expected


@pytest.mark.parametrize("path", sorted(TARGETS), ids=lambda p: p.name)
def test_conda_file_matches_lock(path: Path):
    assert path.read_text() == expected()[path], (
        f"{path.relative_to(ROOT)} disagrees with uv.lock: run `make envs` and commit")


def test_conda_files_take_python_from_conda_and_pin_everything():
    for path in TARGETS:
        deps = yaml.safe_load(path.read_text())["dependencies"]
        assert f"python={PYTHON}" in deps
        pip = next(d["pip"] for d in deps if isinstance(d, dict))
        assert pip and all("==" in req for req in pip), f"{path.name}: unpinned requirement"


def test_direct_dependencies_pinned_in_lock():
    """torch and torchvision come as the matched pair the lock resolved (the CPU-wheel trap)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    versions = {p["name"]: p["version"] for p in lock["package"]}
    pipeline_env = (ROOT / "workflow" / "envs" / "pipeline.yaml").read_text()
    for name in ("torch", "torchvision", "timm", "dvc", "snakemake"):
        assert f'"{name}=={versions[name]}' in pipeline_env


CONDA_ENV = ROOT / "workflow" / "envs" / "pipeline.yaml"
#: conda's match-spec for the conda part of an environment file: name, then =version.
CONDA_SPEC = re.compile(r"[a-z0-9][a-z0-9_.-]*(=[0-9][\w.*]*)?")


def test_the_rules_env_file_is_a_conda_environment():
    """What `conda env create -f` (and Snakemake's --use-conda) reads: known keys, conda-forge,
    conda match-specs, and the pip section last; Python pinned to the lock's."""
    env = yaml.safe_load(CONDA_ENV.read_text())
    assert set(env) == {"name", "channels", "dependencies"} and env["channels"] == ["conda-forge"]
    conda, pip = env["dependencies"][:-1], env["dependencies"][-1]
    assert all(isinstance(s, str) and CONDA_SPEC.fullmatch(s) for s in conda), conda
    assert "pip" in conda and set(pip) == {"pip"}
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    assert lock["requires-python"].lstrip(">=").startswith(PYTHON)


def test_every_rule_runs_in_the_conda_env():
    """`snakemake --use-conda` gives every job the same environment file."""
    from tests.dags import snakemake_dag

    with snakemake_dag(ROOT, forceall=True) as dag:
        rules = {job.rule for job in dag.jobs if job.rule.name != "all"}
    assert len(rules) > 10 and all(rule.conda_env is not None for rule in rules)
    assert {(Path(rule.snakefile).parent / str(rule.conda_env)).resolve()
            for rule in rules} == {CONDA_ENV}


@pytest.mark.skipif(shutil.which("conda") is None and shutil.which("mamba") is None,
                    reason="no conda on this machine (README: getting conda); the env file and "
                           "the rules are checked above")
def test_use_conda_dry_run_plans_every_job():
    done = subprocess.run(["snakemake", "-n", "--use-conda", "--cores", "1", "--forceall",
                           "--quiet", "rules"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "train" in done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("conda") is not None or shutil.which("mamba") is not None,
                    reason="conda is installed here: the dry run above covers --use-conda")
def test_use_conda_without_conda_says_how_to_get_it():
    snakemake = str(Path(sys.executable).with_name("snakemake"))  # the venv's, on any PATH
    done = subprocess.run([snakemake, "-n", "--use-conda", "--cores", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "--use-conda needs conda >= 24.7.1 on PATH, and there is none" in out, out[-3000:]
    assert "Snakemake with --use-conda" in out and "conda info" not in out


def test_every_import_is_declared():
    """Each third-party package the pipeline or the workflow's Python files import is a direct
    dependency in pyproject.toml (not merely pulled in by another one)."""
    import ast
    import importlib.metadata
    import sys

    sources = [*ROOT.glob("pipeline/**/*.py"), *ROOT.glob("workflow/**/*.py")]
    modules = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    third_party = {m for m in modules - {"pipeline", "workflow"} - set(sys.stdlib_module_names)}
    declared = {re.split(r"[ ;<>=!~\[]", spec)[0].lower().replace("_", "-") for spec in
                tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    providers = importlib.metadata.packages_distributions()
    undeclared = {m: providers.get(m) for m in third_party
                  if not {d.lower().replace("_", "-") for d in providers.get(m, [])} & declared}
    assert "torch" in third_party and not undeclared, f"imported, not declared: {undeclared}"
