"""Every way to install the project carries the same pins as uv.lock."""

from __future__ import annotations

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
