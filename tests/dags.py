"""Read the DVC and the Snakemake DAG into one comparable shape.

A job is identified by its name, the same in both engines: DVC's stage address
(``train-learned@resnet_tiny-learned-0``), which the Snakemake training rule prints as its
message, or the stage name, a Snakemake rule's name with ``_`` -> ``-``. DVC's folder deps
are expanded into the outputs other stages write inside them (Snakemake lists those files).
"""

from __future__ import annotations

import os
from contextlib import chdir, contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stage:
    """What an engine knows of one job."""

    name: str
    cmd: str
    deps: frozenset[str]
    outs: frozenset[str]


def _norm(cmd: str) -> str:
    return " ".join(cmd.split())


def dvc_stages(root: Path) -> dict[str, Stage]:
    """Stages of ``root/dvc.yaml`` by address, folder deps expanded into the outputs they
    contain; params files are not deps here (the ``plan`` stage alone reads params.yaml)."""
    from dvc.repo import Repo

    with chdir(root):
        repo = Repo(".")
        raw = {}
        for stage in repo.index.stages:
            deps = [os.path.relpath(d.fs_path, root) for d in stage.deps if d not in stage.params]
            outs = {os.path.relpath(o.fs_path, root) for o in stage.outs}
            raw[stage.addressing] = (stage.cmd, deps, outs)
    produced = {o for _, _, outs in raw.values() for o in outs}
    stages = {}
    for name, (cmd, deps, outs) in raw.items():
        expanded = set()
        for dep in deps:
            inside = {o for o in produced if o.startswith(dep.rstrip("/") + "/")}
            expanded |= inside if dep not in produced and inside else {dep}
        stages[name] = Stage(name, _norm(cmd), frozenset(expanded), frozenset(outs))
    return stages


@contextmanager
def snakemake_dag(root: Path, forceall: bool):
    """The DAG Snakemake builds for ``root/Snakefile`` (its parse writes the plan's digests)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (ConfigSettings, DAGSettings, OutputSettings,
                                          ResourceSettings, StorageSettings, WorkflowSettings)

    with chdir(root), SnakemakeApi(OutputSettings()) as api:
        workflow_api = api.workflow(resource_settings=ResourceSettings(cores=1),
                                    config_settings=ConfigSettings(),
                                    storage_settings=StorageSettings(),
                                    workflow_settings=WorkflowSettings(),
                                    snakefile=Path("Snakefile"), workdir=Path("."))
        workflow = workflow_api.dag(DAGSettings(forceall=forceall)).workflow_api._workflow
        workflow._prepare_dag(forceall=forceall, ignore_incomplete=True, lock_warn_only=True)
        workflow._build_dag()
        yield workflow.dag


def snakemake_stages(root: Path) -> dict[str, Stage]:
    """Jobs of ``root/Snakefile`` (all forced) by name, excluding the ``all`` target."""
    with snakemake_dag(root, forceall=True) as dag:
        return {job.params.job: Stage(job.params.job, _norm(job.shellcmd),
                                      frozenset(map(str, job.input)),
                                      frozenset(map(str, job.output)))
                for job in dag.jobs if job.rule.name != "all"}


def snakemake_needrun(root: Path) -> set[str]:
    """Names of the jobs ``snakemake -n`` would run in ``root`` (the ``all`` target left out)."""
    with snakemake_dag(root, forceall=False) as dag:
        return {job.params.job for job in dag.needrun_jobs() if job.rule.name != "all"}
