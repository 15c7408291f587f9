"""Copies of the repository that tests run whole DAGs in: the environment stage commands need,
a command runner, and the files a run wrote (tests/test_e2e.py, tests/test_slurm.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.conftest import ROOT

BIN = Path(ROOT / ".venv" / "bin")
#: Outputs that are timings of this machine: not expected byte-identical.
TIMINGS = ("results/bench/",)


def env(**extra: str) -> dict[str, str]:
    """The venv first on PATH, so stage commands' `python` is the project's."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1", **extra}


def sh(cwd: Path, *cmd: str, timeout: float | None = None, **extra_env: str) -> str:
    """Run ``cmd`` in ``cwd``; its stdout and stderr (the test fails when it fails)."""
    result = subprocess.run(cmd, cwd=cwd, env=env(**extra_env), capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def project_copy(dest: Path, params: dict) -> Path:
    """The repository's committed-or-committable files, with ``params`` as params.yaml."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout.split()
    for rel in listed:
        if (ROOT / rel).is_file() and not rel.startswith(("results/", "tests/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(dest, "python", "-m", "pipeline.dag.dvcyaml")  # its plots list these params' runs
    sh(dest, "git", "init", "-q")
    sh(dest, "git", "add", "-A")
    sh(dest, "git", "commit", "-qm", "tiny")
    return dest


def outputs(project: Path) -> dict[str, bytes]:
    """Every file the stages wrote under data/ and results/, by relative path (not Snakemake's
    time stamps in folder outputs, not the machine's timings)."""
    return {str(p.relative_to(project)): p.read_bytes()
            for top in ("data", "results") for p in sorted((project / top).rglob("*"))
            if p.is_file() and p.name != ".snakemake_timestamp"
            and not str(p.relative_to(project)).startswith(TIMINGS)}


def rename_module(root: Path, old: str, new: str) -> None:
    """Move module or package ``old`` to ``new`` under ``root`` and fix every import of it,
    as a developer moving code would."""
    source, target = root.joinpath(*old.split(".")), root.joinpath(*new.split("."))
    source = source if source.is_dir() else source.with_suffix(".py")
    target = target if source.is_dir() else target.with_suffix(".py")
    target.parent.mkdir(parents=True, exist_ok=True)
    source.rename(target)
    if not (target.parent / "__init__.py").exists():
        (target.parent / "__init__.py").write_text('"""A wing."""\n')
    for path in (root / "pipeline").rglob("*.py"):
        path.write_text(path.read_text().replace(f"{old}.", f"{new}.")
                        .replace(f"{old} ", f"{new} "))
