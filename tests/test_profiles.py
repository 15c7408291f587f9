"""Workflow profiles for clusters (workflow/profiles/slurm, workflow/profiles/slurm-cpu) and
multi-GPU machines (workflow/profiles/local-gpu): they parse, plan the whole DAG without running
or submitting anything, give the training jobs GPUs (or, on the CPU profile, the cores its
threads are), and poll job states with squeue. tests/test_slurm.py submits to a real SLURM.

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
from tests.projects import project_copy

PROFILES = ROOT / "workflow" / "profiles"
NAMES = ("slurm", "slurm-cpu", "local-gpu")
SLURM = ("slurm", "slurm-cpu")
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
    for name in NAMES:
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


@pytest.mark.parametrize("name", NAMES)
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


def sbatch_flags(rule: str, name: str = "slurm") -> list[str]:
    """The resource flags the slurm plugin would put on this rule's sbatch call, the rule
    taking the threads the workflow gives it."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    cfg = profile(name)
    resources = {**cfg["default-resources"], **cfg["set-resources"].get(rule, {})}
    threads = (yaml.safe_load((ROOT / "params.yaml").read_text())["train"]["cpu_threads"]
               if rule == "train" else 1)
    job = FakeJob(resources, threads=threads)
    params = {"run_uuid": "id", "slurm_logfile": "log", "comment_str": rule, "account": "",
              "partition": f"-p {resources['slurm_partition']}", "workdir": "."}
    return (get_submit_command(job, params) + set_gres_string(job)).split()


@pytest.mark.parametrize("rule", TRAIN_RULES)
def test_slurm_training_jobs_request_gpus_cores_per_gpu_and_one_task(rule):
    flags = sbatch_flags(rule)
    assert {"--gpus=1", "--cpus-per-gpu=8", "--nodes=1", "-p", "gpu",
            "--ntasks-per-node=1"} <= set(flags), flags
    # the training command starts one process per GPU itself: never one task per GPU
    assert not any(f.startswith(("--cpus-per-task", "--ntasks-per-gpu")) for f in flags), flags
    assert flags[flags.index("--mem") + 1] == "64000" and flags[flags.index("-t") + 1] == "720"


def test_slurm_other_jobs_get_the_defaults():
    flags = sbatch_flags("tables")
    assert "--cpus-per-task=2" in flags and not any(f.startswith("--gpus") for f in flags)
    assert flags[flags.index("-p") + 1] == "cpu"


@pytest.mark.parametrize("rule", TRAIN_RULES)
def test_slurm_cpu_training_jobs_get_their_threads_as_cores_and_no_gpu(rule):
    flags = sbatch_flags(rule, "slurm-cpu")
    threads = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]["cpu_threads"]
    assert f"--cpus-per-task={threads}" in flags and "--ntasks=1" in flags, flags
    assert not any(f.startswith("--gpus") for f in flags), flags
    assert flags[flags.index("-p") + 1] == "cpu" and "--nodes=1" in flags
    assert "--cpus-per-task=1" in sbatch_flags("tables", "slurm-cpu")


@pytest.mark.parametrize("name", SLURM)
def test_slurm_profiles_poll_squeue_well_within_min_job_age(name):
    """squeue works without accounting; the plugin would switch to sacct when MinJobAge (300 s
    by default) is under three first-check intervals."""
    cfg = profile(name)
    assert cfg["slurm-status-command"] == "squeue"
    assert 3 * cfg.get("slurm-init-seconds-before-status-checks", 40) < 300


@pytest.mark.parametrize("name", SLURM)
def test_slurm_profile_retries_and_waits(name):
    cfg = profile(name)
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
    for name in NAMES:
        assert set(profile(name)["set-resources"]) <= rules, name


def test_profiles_are_where_the_docs_say():
    for name in NAMES:
        assert (PROFILES / name / "profile.yaml").is_file()
    assert not (PROFILES / "default").exists(), "a root Snakefile ignores profiles/default"
    assert os.path.isfile(ROOT / "Snakefile")
