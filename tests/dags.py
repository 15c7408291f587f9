"""Read the DVC and the Snakemake DAG into one comparable shape.

A stage is identified by its base name (DVC's stage name before ``@``, a Snakemake rule's
name with ``_`` -> ``-``) and its first output: matrix items and wildcards name the same run
differently (DVC's ``transfer-classification@pair0-0`` is Snakemake's job with target, source
and seed wildcards), but both write the same files.
"""

from __future__ import annotations

import os
from contextlib import chdir
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stage:
    """What an engine knows of one stage."""

    name: str
    cmd: str
    deps: frozenset[str]
    params: frozenset[str]
    outs: frozenset[str]


def _norm(cmd: str) -> str:
    return " ".join(cmd.split())


def dvc_stages(root: Path) -> dict[str, Stage]:
    """Stages of ``root/dvc.yaml``, directory deps expanded into the outputs they contain."""
    from dvc.repo import Repo

    with chdir(root):
        repo = Repo(".")
        raw = {}
        for stage in repo.index.stages:
            deps = [os.path.relpath(d.fs_path, root) for d in stage.deps
                    if d not in stage.params]  # params are compared as keys, not as a file
            params = {key for p in stage.params for key in p.params}
            outs = {os.path.relpath(o.fs_path, root) for o in stage.outs}
            raw[stage.addressing] = (stage.cmd, deps, params, outs)
    produced = {o for _, _, _, outs in raw.values() for o in outs}
    stages = {}
    for name, (cmd, deps, params, outs) in raw.items():
        expanded = set()
        for dep in deps:
            inside = {o for o in produced if o.startswith(dep.rstrip("/") + "/")}
            expanded |= inside or {dep}
        stage = Stage(name, _norm(cmd), frozenset(expanded), frozenset(params), frozenset(outs))
        stages[key(stage)] = stage
    return stages


def key(stage: Stage) -> str:
    """Engine-independent identity: base name and first output."""
    return f"{stage.name.split('@')[0]}:{min(stage.outs)}"


def snakemake_stages(root: Path) -> dict[str, Stage]:
    """Jobs of ``root/Snakefile`` (all forced), excluding the ``all`` target."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (ConfigSettings, DAGSettings, OutputSettings,
                                          ResourceSettings, StorageSettings, WorkflowSettings)

    with chdir(root), SnakemakeApi(OutputSettings()) as api:
        workflow_api = api.workflow(resource_settings=ResourceSettings(cores=1),
                                    config_settings=ConfigSettings(),
                                    storage_settings=StorageSettings(),
                                    workflow_settings=WorkflowSettings(),
                                    snakefile=Path("Snakefile"), workdir=Path("."))
        workflow = workflow_api.dag(DAGSettings(forceall=True)).workflow_api._workflow
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True)
        workflow._build_dag()
        stages = {}
        for job in workflow.dag.jobs:
            if job.rule.name == "all":
                continue
            name = job.rule.name.replace("_", "-")
            if job.wildcards:
                name += "@" + "-".join(str(v) for v in dict(job.wildcards).values())
            stage = Stage(name, _norm(job.shellcmd), frozenset(map(str, job.input)),
                          frozenset(job.params.tracked), frozenset(map(str, job.output)))
            stages[key(stage)] = stage
    return stages
