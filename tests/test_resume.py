"""A training stage killed with SIGKILL resumes and ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from tests.conftest import ROOT, resizer_spec


def stage(cwd: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *args]


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(stage(cwd, *args), cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def project(tmp_path, tiny_params) -> Path:
    params = dict(tiny_params)
    params["train"]["scratch"]["epochs"] = 6
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run(tmp_path, "synth-imagenet", "--out", "data/synthetic/imagenet")
    run(tmp_path, "prepare-imagenet", "--out", "manifests", "--report", "report.csv",
        "--summary", "summary.json")
    return tmp_path


def train_args(name: str) -> list[str]:
    return ["train", "--task", "classification", "--backbone", "resnet_tiny", "--mode",
            "default", "--seed", "0", "--manifests", "manifests", "--out", f"runs/{name}",
            "--metrics", f"metrics/{name}.json", "--live", f"live/{name}.csv"]


def kill_once_written(cwd: Path, args: list[str], state: Path,
                      sig: int = signal.SIGKILL) -> tuple[int, str]:
    """Start ``python -m pipeline <args>`` in ``cwd`` and send it ``sig`` as soon as ``state``
    (its first epoch's resume state) exists; its exit status and stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.time() + 300
        while not state.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(sig)
        proc.wait()
        err.seek(0)
        stderr = err.read()
    assert state.exists(), "the run finished or failed before its first epoch state was written"
    return proc.returncode, stderr


def test_sigkill_then_rerun_matches_uninterrupted(project):
    run(project, *train_args("whole"))
    state = project / "runs/killed/resume.pt"
    kill_once_written(project, train_args("killed"), state)
    assert not (project / "metrics/killed.json").exists(), "killed too late to test resume"
    assert not (project / "runs/killed/model.pt").exists()

    resumed = run(project, *train_args("killed"))
    assert "resuming from" in resumed.stderr
    assert (project / "metrics/killed.json").read_bytes() == (
        project / "metrics/whole.json").read_bytes()
    assert (project / "runs/killed/model.pt").read_bytes() == (
        project / "runs/whole/model.pt").read_bytes()
    assert (project / "runs/killed/history.csv").read_bytes() == (
        project / "runs/whole/history.csv").read_bytes()
    assert not state.exists(), "the resume state is removed once the run has finished"
    # the per-epoch CSV is given the epochs before the kill again (replayed from the state),
    # so it matches too
    assert (project / "live/killed.csv").read_bytes() == (project / "live/whole.csv").read_bytes()
    assert pd.read_csv(project / "live/whole.csv")["epoch"].tolist() == list(range(1, 7))


def test_state_of_another_configuration_is_not_resumed(project):
    run(project, *train_args("a"))
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["seed"] = 1
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    # plant a state of the old configuration, as an interrupted old run would leave it
    import torch

    from pipeline.models import build_model
    from pipeline.training.resume import ResumeState
    model = build_model("resnet_tiny", resizer_spec("bilinear", 16), 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    ResumeState(project / "runs/b/resume.pt", "old-configuration").save(model, opt, sched, 5, [])
    result = run(project, *train_args("b"))
    assert "belongs to another configuration" in result.stderr
    assert "resuming from" not in result.stderr


def test_neither_the_wait_policy_nor_decoding_once_changes_a_byte(project):
    """OpenMP's wait policy (chosen by load at start) and the decode-once loader are speed
    only: the same run under the spinning and the sleeping policy, and from manifests with
    their images decoded once, gives the same checkpoint and history."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name, policy in (("spin", "ACTIVE"), ("sleep", "PASSIVE")):
        done = subprocess.run(stage(project, *train_args(name)), cwd=project, capture_output=True,
                              text=True, env={**env, "OMP_WAIT_POLICY": policy})
        assert done.returncode == 0, done.stderr
    run(project, "preresize", "--manifests", "manifests", "--out", "decoded")
    assert sorted(p.name for p in (project / "decoded").glob("*.npz")) == [
        "train.decoded.npz", "val.decoded.npz"]
    args = train_args("once")
    args[args.index("manifests")] = "decoded"
    run(project, *args)
    def checkpoint(name: str) -> dict:
        return torch.load(project / f"runs/{name}/model.pt", weights_only=False)

    spin = checkpoint("spin")
    for name in ("sleep", "once"):
        assert (project / f"runs/{name}/history.csv").read_bytes() == \
            (project / "runs/spin/history.csv").read_bytes(), name
        ours = checkpoint(name)
        assert ours.keys() == spin.keys()
        weights = [k for k in spin if isinstance(spin[k], dict) and all(
            isinstance(v, torch.Tensor) for v in spin[k].values())]
        assert weights, list(spin)
        for key in weights:
            assert all(torch.equal(ours[key][k], spin[key][k]) for k in spin[key]), (name, key)
    # the same bytes whole where nothing but the policy differed; the decode-once run's
    # checkpoint differs only in the loader its metadata names
    assert (project / "runs/sleep/model.pt").read_bytes() == \
        (project / "runs/spin/model.pt").read_bytes()
    loaders = {n: yaml.safe_load((project / f"metrics/{n}.json").read_text())["loader"]
               for n in ("spin", "once")}
    assert loaders["once"] == "decoded" and loaders["spin"] != "decoded"
