"""Deterministic reruns: the default DAG run twice from scratch, in two directories and two
fresh processes, writes byte-identical outputs (tiny configuration, on the CPU).

The stage commands are dvc.yaml's own (so the test follows the DAG as it grows), run in
topological order; stages that measure this machine's speed are left out. Each copy runs all its stages in one process through ``pipeline.cli.main``
to keep the test fast (an import of torch and timm costs more than a tiny stage); the two
copies run at the same time in separate processes, so nothing (hash seeds, caches, RNG state)
is shared between them. Compared: every file the stages write under ``data/`` and
``results/`` (manifests, checkpoints, histories, metrics, DVCLive logs, tables, figures),
not the logs. Why GPU reruns
are not byte-identical is documented in :mod:`pipeline.device`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, TINY, deep_merge
from tests.dags import dvc_stages
from tests.test_e2e import project_copy

PREFIX = ["python", "-m", "pipeline"]
#: Stages whose outputs are timings of this machine (dvc.yaml says so beside their outs): not
#: expected byte-identical, so not run here.
TIMINGS = {"bench-loaders"}


def dag_commands(project: Path) -> list[list[str]]:
    """``python -m pipeline`` arguments of every dvc.yaml stage, producers before consumers."""
    stages = {n: s for n, s in dvc_stages(project).items() if s.name not in TIMINGS}
    producer = {out: name for name, stage in stages.items() for out in stage.outs}
    needs = {name: {producer[d] for d in stage.deps if d in producer}
             for name, stage in stages.items()}
    ordered: list[str] = []
    while len(ordered) < len(stages):
        ready = sorted(n for n in stages if n not in ordered and needs[n] <= set(ordered))
        assert ready, f"cycle among {set(stages) - set(ordered)}"
        ordered += ready
    commands = []
    for name in ordered:
        argv = shlex.split(stages[name].cmd)
        assert argv[:3] == PREFIX, f"{name}: not a `python -m pipeline` command: {argv}"
        commands.append(argv[3:])
    return commands


def run_dag(project: str, commands_json: str) -> None:
    """Run every stage in ``project`` in this process (the subprocess's entry point)."""
    from pipeline.cli import main

    os.chdir(project)
    for argv in json.loads(commands_json):
        status = main(argv)
        assert status == 0, f"{argv} exited {status}"


def outputs(project: Path) -> dict[str, bytes]:
    """Every file under the stages' output folders, by relative path."""
    files = {}
    for top in ("data", "results"):
        for path in sorted((project / top).rglob("*")):
            if path.is_file():
                files[str(path.relative_to(project))] = path.read_bytes()
    return files


#: TINY, with one intra-op thread per copy (the two copies run side by side on two cores; any
#: fixed count is deterministic).
OVERLAY = {"train": {"cpu_threads": 1}}


@pytest.fixture(scope="module")
def tiny() -> dict:
    return deep_merge(deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY),
                      OVERLAY)


def test_two_runs_from_scratch_are_byte_identical(tmp_path, tiny):
    first = project_copy(tmp_path / "first", tiny)
    second = project_copy(tmp_path / "second", tiny)
    commands = dag_commands(first)
    assert any(c[0] == "train" for c in commands) and commands[-1][0] == "figures"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "import sys; from tests.test_determinism import run_dag; run_dag(*sys.argv[1:])"
    runs = [subprocess.Popen([sys.executable, "-c", code, str(p), json.dumps(commands)],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True) for p in (first, second)]
    for run in runs:
        log = run.communicate(timeout=600)[0]
        assert run.returncode == 0, log[-4000:]

    a, b = outputs(first), outputs(second)
    assert set(a) == set(b)
    assert {"results/tables/classification.csv", "results/tables/iqa.csv",
            "results/tables/resizer_params.csv", "results/figures/examples.png"} <= set(a)
    assert any(p.endswith("model.pt") for p in a)
    differ = sorted(p for p in a if a[p] != b[p])
    assert not differ, f"outputs differ between two runs from scratch: {differ}"
