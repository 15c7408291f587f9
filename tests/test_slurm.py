"""SLURM for real: a one-node cluster on this machine (workflow/scripts/local_slurm.sh), the
tiny DAG submitted through the project's CPU profile job by job with sbatch, and its outputs
compared byte for byte with a local Snakemake run's; one training job with 2 DDP processes
(gloo) as a multi-GPU job would run; requests the cluster cannot meet refused before anything
is submitted. Plus the pre-submission checks (workflow/slurm.py) on what real clusters report.

The cluster tests need the Debian packages (``local_slurm.sh install``, as root: .ci/run does
it) and root to start the daemons; without them they are skipped, saying why. Every wait has a
timeout: the daemons' start and stop (60 s each), each Snakemake run (``RUN_TIMEOUT``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import ROOT
from tests.projects import env, outputs, project_copy, sh
from workflow import slurm

SCRIPT = ROOT / "workflow" / "scripts" / "local_slurm.sh"
#: The README's command (section "Clusters"), as the test runs it.
PROFILE = ("--workflow-profile", "workflow/profiles/slurm-cpu")
RUN_TIMEOUT = 600
DEFAULT_RUN = "classification/resnet_tiny/default/seed0"


def missing() -> str | None:
    """Why the cluster tests cannot run here, or None."""
    absent = [b for b in ("/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged")
              if not os.path.exists(b)] + [b for b in ("sbatch", "squeue", "sinfo")
                                              if shutil.which(b) is None]
    if absent:
        return (f"SLURM is not installed ({', '.join(absent)} missing): run "
                f"`sudo {SCRIPT.relative_to(ROOT)} install` (.ci/run does)")
    if os.geteuid() != 0:
        return "starting the SLURM daemons needs root"
    return None


needs_slurm = pytest.mark.skipif(missing() is not None, reason=missing() or "")


@pytest.fixture(scope="module")
def cluster():
    """The local one-node cluster, started for these tests and stopped after them."""
    subprocess.run([str(SCRIPT), "start"], check=True, timeout=180)
    yield
    subprocess.run([str(SCRIPT), "stop"], check=True, timeout=180)


def submitted_jobs() -> set[int]:
    """Ids of every job the controller knows (finished ones for MinJobAge seconds)."""
    out = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i"], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return {int(job) for job in out.split()}


@pytest.fixture(scope="module")
def slurm_project(tmp_path_factory, tiny, cluster) -> tuple[Path, str, float]:
    """The tiny DAG run through SLURM with the CPU profile: (project, Snakemake's output,
    wall seconds)."""
    project = project_copy(tmp_path_factory.mktemp("slurm"), tiny)
    start = time.monotonic()
    out = sh(project, "snakemake", *PROFILE, timeout=RUN_TIMEOUT)
    return project, out, time.monotonic() - start


@needs_slurm
@pytest.mark.slurm
@pytest.mark.e2e  # from the tiny DAG run through SLURM: `make test-quick` leaves it out
def test_the_tiny_dag_runs_through_sbatch_like_a_local_run(slurm_project, snakemake_project):
    project, out, seconds = slurm_project
    print(f"tiny DAG through SLURM: {seconds:.0f} s wall")
    submitted = out.count("has been submitted with SLURM jobid")
    steps = re.search(r"(\d+) of (\d+) steps \(100%\) done", out)
    assert steps and steps.group(1) == steps.group(2), out
    assert submitted == int(steps.group(2)) - 1 > 20, out  # every job but `all`, by sbatch
    a, b = outputs(snakemake_project), outputs(project)
    assert set(a) == set(b)
    differ = sorted(p for p in a if a[p] != b[p])
    assert not differ, f"outputs differ between the local and the SLURM run: {differ}"
    assert "Nothing to be done" in sh(project, "snakemake", *PROFILE, "--dry-run")


@needs_slurm
@pytest.mark.slurm
@pytest.mark.e2e  # from the tiny DAG run through SLURM: `make test-quick` leaves it out
def test_a_ddp_training_job_on_the_cluster(slurm_project, tmp_path):
    """One training job with 2 gloo processes (PIPELINE_NPROC=2, passed on by sbatch), as a
    2-GPU job would train: the same files, in the format of the 1-process run's."""
    project, _, _ = slurm_project
    ddp = tmp_path / "ddp"
    shutil.copytree(project, ddp, symlinks=True)
    target = f"results/metrics/{DEFAULT_RUN}.json"
    out = sh(ddp, "snakemake", *PROFILE, "--force", target, timeout=RUN_TIMEOUT,
             PIPELINE_NPROC="2")
    assert "has been submitted with SLURM jobid" in out, out
    log = (ddp / f"logs/train/{DEFAULT_RUN}.log").read_text()
    assert "starting 2 training processes" in log and "all 2 processes in step" in log, log
    one, two = (json.loads((p / target).read_text()) for p in (project, ddp))
    assert set(one) == set(two) and (one["processes"], two["processes"]) == (1, 2)
    states = [torch.load(p / f"data/runs/{DEFAULT_RUN}/model.pt", map_location="cpu",
                         weights_only=True) for p in (project, ddp)]
    assert states[0].keys() == states[1].keys()
    assert {k: v.shape for k, v in states[0]["state_dict"].items()} == {
        k: v.shape for k, v in states[1]["state_dict"].items()}
    history = [(p / f"data/runs/{DEFAULT_RUN}/history.csv").read_text().splitlines()[0]
               for p in (project, ddp)]
    assert history[0] == history[1]


def refused(project: Path, *args: str) -> str:
    """Run Snakemake with ``args``; it must fail before submitting anything. Its output."""
    newest = max(submitted_jobs(), default=0)
    result = subprocess.run(["snakemake", *args, "--force", f"results/metrics/{DEFAULT_RUN}.json"],
                            cwd=project, env=env(), capture_output=True, text=True,
                            timeout=RUN_TIMEOUT)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "nothing was submitted" in out, out
    new = {job for job in submitted_jobs() if job > newest}  # older ones may have aged out
    assert not new, f"jobs {sorted(new)} were submitted"
    return out


@needs_slurm
@pytest.mark.slurm
@pytest.mark.e2e  # from the tiny DAG run through SLURM: `make test-quick` leaves it out
def test_requests_the_cluster_cannot_meet_fail_before_submission(slurm_project, tmp_path):
    project, _, _ = slurm_project
    out = refused(project, "--workflow-profile", "workflow/profiles/slurm")
    assert "rule 'train' asks for partition 'gpu', which this cluster does not have" in out
    gpu = tmp_path / "gpu-on-cpu"
    gpu.mkdir()
    profile = yaml.safe_load((project / "workflow/profiles/slurm/profile.yaml").read_text())
    profile["set-resources"]["train"]["slurm_partition"] = "cpu"
    (gpu / "profile.yaml").write_text(yaml.safe_dump(profile))
    out = refused(project, "--workflow-profile", str(gpu))
    assert "asks for 1 GPU(s) on a node, but the nodes of partition 'cpu' have no GPU" in out
    assert "workflow/profiles/slurm-cpu" in out
    assert "asks for 8 CPUs on a node" in out and "MB of memory" in out, out
    out = refused(project, *PROFILE, "--slurm-status-command", "sacct")
    assert "accounting is disabled" in out and "--slurm-status-command squeue" in out


# --- the checks on their own, from what real clusters print --------------------------------

SINFO = """\
cpu*|64|256000|(null)
gpu|32|512000|gpu:a100:4(S:0-1)
gpu|16|128000|gpu:2
"""


def test_sinfo_lines_give_node_kinds_with_their_gpus():
    kinds = slurm.parse_sinfo(SINFO)
    assert [(k.partition, k.cpus, k.memory_mb, k.gpus) for k in kinds] == [
        ("cpu", 64, 256000, 0), ("gpu", 32, 512000, 4), ("gpu", 16, 128000, 2)]
    assert slurm.gpus_in_gres("gpu:a100:2,gpu:v100:1") == 3 and slurm.gpus_in_gres("gpu") == 1


def test_requests_read_like_the_plugin_writes_sbatch_flags():
    assert slurm.request("train", {"gpu": 2, "cpus_per_gpu": 8, "cpus_per_task": 0,
                                   "mem_mb": 64000}, threads=2) == slurm.Request(
        "train", None, 16, 64000, 2)
    assert slurm.request("tables", {"slurm_partition": "cpu", "mem_mb_per_cpu": 1000},
                         threads=3) == slurm.Request("tables", "cpu", 3, 3000, 0)
    assert slurm.request("x", {"gres": "gpu:1", "mem_mb": lambda: 1}, 1).gpus == 1


@pytest.mark.parametrize("req, expected", [
    (slurm.Request("train", "gpu", 8, 64000, 4), None),
    (slurm.Request("train", "gpu", 8, 64000, 8), "asks for 8 GPU(s) on a node, but the nodes "
                                                 "of partition 'gpu' have 4"),
    (slurm.Request("train", None, 1, 1000, 1), "partition 'cpu' have no GPU(s): on a cluster "
                                               "without GPUs use --workflow-profile"),
    (slurm.Request("train", "cpu", 128, None, 0), "asks for 128 CPUs on a node, but the "
                                                  "largest node of partition 'cpu' has 64"),
    (slurm.Request("tables", "gpu", 1, 600000, 0), "asks for 600000 MB of memory"),
    (slurm.Request("tables", "big", 1, 1, 0), "asks for partition 'big', which this cluster "
                                              "does not have (partitions: cpu, gpu)"),
])
def test_each_request_the_cluster_cannot_meet_is_named(req, expected):
    found = slurm.problems([req], slurm.parse_sinfo(SINFO), default_partition="cpu")
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and expected in found[0], found


NO_ACCOUNTING = {"AccountingStorageType": "accounting_storage/none", "MinJobAge": "300 sec"}


def test_status_queries_that_would_never_see_a_job_end_are_refused():
    assert "accounting is disabled" in slurm.status_problem("sacct", 10, NO_ACCOUNTING, True)
    assert slurm.status_problem("squeue", 10, NO_ACCOUNTING, True) is None
    assert "switch to sacct" in slurm.status_problem("squeue", 120, NO_ACCOUNTING, True)
    unreadable = {"AccountingStorageType": "accounting_storage/none"}
    assert "switch to sacct" in slurm.status_problem("squeue", 10, unreadable, True)
    with_db = {"AccountingStorageType": "accounting_storage/slurmdbd", "MinJobAge": "300"}
    assert slurm.status_problem("sacct", 40, with_db, True) is None
    assert slurm.status_problem("sacct", 40, NO_ACCOUNTING, sacct_installed=False) is None
    assert slurm.seconds("5 min") == 300 and slurm.seconds("1h") == 3600


def test_the_readme_shows_the_commands_these_tests_run():
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("sudo workflow/scripts/local_slurm.sh install"):]
    block = block[:block.index("```")].replace("\\\n", " ")
    lines = [" ".join(line.split("#")[0].split()) for line in block.splitlines()]
    assert f"snakemake {' '.join(PROFILE)}" in lines
    assert (f"PIPELINE_NPROC=2 snakemake {' '.join(PROFILE)} --force "
            f"results/metrics/{DEFAULT_RUN}.json") in lines
    for verb in ("install", "start", "stop"):
        assert f"sudo {SCRIPT.relative_to(ROOT)} {verb}" in lines
