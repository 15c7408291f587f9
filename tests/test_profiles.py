"""Workflow profiles for clusters (workflow/profiles/slurm) and multi-GPU machines
(workflow/profiles/local-gpu): they parse, plan the whole DAG without running or submitting
anything, and give the training jobs GPUs.

No SLURM here: ``--dry-run`` never calls sbatch (Snakemake swaps in its dry-run executor after
parsing), but it does load the slurm executor plugin, whose options the profile uses
(``slurm-requeue``); an unknown executor or option fails the parse, as it would on a cluster. The sbatch flags a job would
get are computed with the plugin's own functions, as its submit path does.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import os
import sys
from types import SimpleNamespace

import pytest
import yaml

from tests.conftest import ROOT
from tests.test_e2e import project_copy

PROFILES = ROOT / "workflow" / "profiles"
#: The one Snakemake rule that trains (every run of every family).
TRAIN_RULES = ("train",)


def profile(name: str) -> dict:
    return yaml.safe_load((PROFILES / name / "profile.yaml").read_text())


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory) -> dict[str, str]:
    """`snakemake --workflow-profile <profile> --dry-run` output per profile.

    Run through Snakemake's own command-line entry (``parse_args`` + ``args_to_api``, what the
    ``snakemake`` script runs) in this process, which has torch and timm loaded already:
    about 1 s instead of a fresh interpreter's 15 s per profile.
    """
    from snakemake.cli import args_to_api, parse_args

    project = project_copy(tmp_path_factory.mktemp("profiles"),
                           yaml.safe_load((ROOT / "params.yaml").read_text()))
    outputs, path = {}, sys.path[:]
    for name in ("slurm", "local-gpu"):
        out = io.StringIO()
        try:
            with contextlib.chdir(project), contextlib.redirect_stdout(out), \
                    contextlib.redirect_stderr(out):
                parser, args = parse_args(["--workflow-profile", f"workflow/profiles/{name}",
                                           "--dry-run"])
                ok = args_to_api(args, parser)
        finally:
            sys.path[:] = path  # common.smk puts the copy on sys.path
        assert ok, f"{name} dry-run failed:\n{out.getvalue()}"
        outputs[name] = out.getvalue()
    return outputs


def planned(out: str) -> list[str]:
    """The jobs a dry-run plans, by the name each prints (``Job 16: train-fixed@...``)."""
    return [line.split(": ", 1)[1] for line in out.splitlines()
            if line.startswith("Job ") and ": " in line]


@pytest.mark.parametrize("name", ["slurm", "local-gpu"])
def test_dry_run_plans_the_whole_dag(dry_runs, name):
    out = dry_runs[name]
    assert f"Using workflow specific profile workflow/profiles/{name}" in out
    assert "This was a dry-run" in out
    jobs = planned(out)
    assert "tables" in jobs and "figures" in jobs, out
    families = {job.split("@")[0] for job in jobs if "@" in job}
    assert {"train-baseline", "train-fixed", "train-learned", "train-joint", "iqa-baseline",
            "iqa-learned"} <= families, out


class FakeJob:
    """What the plugin's submit helpers read from a job: resources and threads."""

    def __init__(self, resources: dict, threads: int = 1):
        self.resources = SimpleNamespace(**resources)
        self.resources.get = resources.get
        self.threads = threads


def sbatch_flags(rule: str) -> str:
    """The resource flags the slurm plugin would put on this rule's sbatch call."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    cfg = profile("slurm")
    resources = {**cfg["default-resources"], **cfg["set-resources"].get(rule, {})}
    job = FakeJob(resources, threads=2)
    params = {"run_uuid": "id", "slurm_logfile": "log", "comment_str": rule, "account": "",
              "partition": f"-p {resources['slurm_partition']}", "workdir": "."}
    return get_submit_command(job, params) + set_gres_string(job)


@pytest.mark.parametrize("rule", TRAIN_RULES)
def test_slurm_training_jobs_request_gpus_and_cores_per_gpu(rule):
    flags = sbatch_flags(rule).split()
    assert {"--gpus=1", "--cpus-per-gpu=8", "--nodes=1", "-p", "gpu"} <= set(flags), flags
    assert not any(f.startswith("--cpus-per-task") for f in flags), flags
    assert flags[flags.index("--mem") + 1] == "64000" and flags[flags.index("-t") + 1] == "720"


def test_slurm_other_jobs_get_the_defaults():
    flags = sbatch_flags("tables").split()
    assert "--cpus-per-task=2" in flags and not any(f.startswith("--gpus") for f in flags)
    assert flags[flags.index("-p") + 1] == "cpu"


def test_slurm_profile_retries_and_waits():
    cfg = profile("slurm")
    assert cfg["executor"] == "slurm" and cfg["jobs"] >= 1
    assert cfg["restart-times"] >= 1 and cfg["latency-wait"] >= 30 and cfg["slurm-requeue"]
    assert importlib.metadata.version("snakemake-executor-plugin-slurm").startswith("2.")


def test_local_gpu_profile_serialises_training_jobs():
    cfg = profile("local-gpu")
    total = cfg["resources"]["gpu"]
    assert all(cfg["set-resources"][rule]["gpu"] == total for rule in TRAIN_RULES)


def test_profiles_name_only_existing_rules():
    rules = set()
    for path in (ROOT / "workflow" / "rules").glob("*.smk"):
        rules |= {line.split()[1].rstrip(":") for line in path.read_text().splitlines()
                  if line.startswith("rule ")}
    for name in ("slurm", "local-gpu"):
        assert set(profile(name)["set-resources"]) <= rules, name


def test_profiles_are_where_the_docs_say():
    for name in ("slurm", "local-gpu"):
        assert (PROFILES / name / "profile.yaml").is_file()
    assert not (PROFILES / "default").exists(), "a root Snakefile ignores profiles/default"
    assert os.path.isfile(ROOT / "Snakefile")
