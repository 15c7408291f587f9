"""Data-parallel training: two gloo processes on the CPU through the stage command
(``PIPELINE_NPROC=2``), staying in step; plus the process count, the global batch split and
the device choice.

The two-process run goes through ``pipeline.cli.main`` in this process (the launcher starts
the two workers as fresh processes either way); it checks that both processes ran the same
number of batches, that their weights and buffers agree at the end (the stage compares a digest
of every process's state and stops when they differ), that the saved checkpoint is exactly
those weights, and that every validation image was counted once.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from pipeline import cli
from pipeline.core.errors import ConfigError, DeviceError
from pipeline.dag import plan
from pipeline.models import build_model
from pipeline.training import distributed
from pipeline.training.device import Accel, amp_dtype, as_accel, gpu_request, precision_request
from pipeline.training.distributed import Dist, per_process_batch, process_count, state_digest
from tests.conftest import resizer_spec


@pytest.fixture
def project(tmp_path, tiny_params, monkeypatch, restore_logging) -> Path:
    """The tiny synthetic set (48 train, 24 val images, 4 classes) and its manifests."""
    for name in ("PIPELINE_NPROC", "PIPELINE_REQUIRE_GPU", "CUDA_VISIBLE_DEVICES", "LOCAL_RANK",
                 "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    params = dict(tiny_params)
    params["train"]["scratch"]["epochs"] = 2
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(params))
    assert cli.main(["synth-imagenet", "--out", "data/synthetic/imagenet"]) == 0
    assert cli.main(["prepare-imagenet", "--out", "manifests", "--report", "report.csv",
                     "--summary", "summary.json"]) == 0
    return tmp_path


def train_two_processes() -> str:
    """The stage with PIPELINE_NPROC=2; its log."""
    status = cli.main(["train", "--task", "classification", "--backbone", "resnet_tiny",
                       "--mode", "default", "--seed", "0", "--manifests", "manifests",
                       "--out", "run", "--metrics", "metrics.json", "--live", "live.csv",
                       "--log-file", "train.log"])
    log = Path("train.log").read_text()
    assert status == 0, log
    assert "starting 2 training processes" in log
    return log


def test_two_processes_stay_in_step(project, monkeypatch):
    monkeypatch.setenv("PIPELINE_NPROC", "2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # gloo on the CPU, on any machine
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    log = train_two_processes()
    assert "process 0 of 2 on cpu" in log

    # 48 training images: 24 per process, 6 batches of 8 / 2 = 4 images on each
    assert "epoch 1: training batches by process [6, 6]" in log, log
    # both processes ended with the same weights and buffers, and the checkpoint holds them
    agreed = re.search(r"all 2 processes in step: weights digest (\w+)", log)
    assert agreed, log
    saved = torch.load("run/model.pt", map_location="cpu", weights_only=True)["state_dict"]
    assert state_digest(saved).startswith(agreed.group(1))

    # every validation image counted once over the two shards
    metrics = json.loads(Path("metrics.json").read_text())
    assert metrics["test_images"] == len(pd.read_csv("manifests/val.csv")) == 24
    assert (metrics["device"], metrics["processes"], metrics["precision"]) == ("cpu", 2, "fp32")
    assert (metrics["task"], metrics["family"], metrics["mode"], metrics["seed"]) == (
        "classification", "baseline", "default", 0)
    history = pd.read_csv("run/history.csv")
    assert history.columns.tolist() == ["epoch", "lr", "train_loss", "grad_norm_backbone",
                                        "grad_norm_resizer", "val_loss", "val_top1_err",
                                        "val_top5_err"]
    assert history["epoch"].tolist() == [1, 2]
    # the per-epoch record, written once (by rank 0): the history's rows
    assert Path("live.csv").read_bytes() == Path("run/history.csv").read_bytes()
    assert not Path("run/resume.pt").exists()
    assert sorted(p.name for p in Path("run").iterdir()) == ["history.csv", "model.pt"]
    assert "[rank 1]" not in log, "only rank 0 writes the stage log"


def dag_command(params_path: Path, run: tuple[str, str, str, str]) -> list[str]:
    """The training command both engines run for ``run``, as the plan writes it."""
    params = yaml.safe_load(params_path.read_text())
    (job,) = [job for job in plan.jobs(params).values() if job.run == run]
    return shlex.split(job.cmd)


def test_torchrun_runs_the_dags_command_like_the_built_in_launcher(project, monkeypatch):
    """`torchrun ... -m pipeline train ...` with the DAG's own command (its ``--log-file``
    included) trains the same two processes as ``PIPELINE_NPROC=2``: the same bytes."""
    monkeypatch.setenv("PIPELINE_NPROC", "2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    train_two_processes()

    cmd = dag_command(Path("params.yaml"), ("classification", "resnet_tiny", "default", "0"))
    assert cmd[:3] == ["python", "-m", "pipeline"] and "--log-file" in cmd
    torchrun = [str(Path(sys.executable).with_name("torchrun")), "--standalone",
                "--nproc_per_node", "2", "-m", *cmd[2:], "--manifests", "manifests",
                "--out", "torchrun", "--metrics", "torchrun.json", "--live", "torchrun.csv"]
    env = {k: v for k, v in os.environ.items() if k != "PIPELINE_NPROC"}
    result = subprocess.run(torchrun, env=env,
                            capture_output=True, text=True, timeout=600)
    log_file = Path(cmd[cmd.index("--log-file") + 1])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "process 0 of 2 on cpu" in log_file.read_text()
    assert "starting 2 training processes" not in log_file.read_text()  # torchrun started them
    for ours, theirs in (("run/model.pt", "torchrun/model.pt"),
                         ("run/history.csv", "torchrun/history.csv"),
                         ("metrics.json", "torchrun.json"), ("live.csv", "torchrun.csv")):
        assert Path(ours).read_bytes() == Path(theirs).read_bytes(), ours


def test_process_count_from_the_environment(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert process_count({}) == 1
    assert process_count({"PIPELINE_NPROC": "3"}) == 3
    assert process_count({"LOCAL_RANK": "1", "RANK": "1", "WORLD_SIZE": "4"}) == 4
    for bad in ("0", "-2", "two"):
        with pytest.raises(DeviceError, match="not a process count"):
            process_count({"PIPELINE_NPROC": bad})


def test_process_count_follows_the_visible_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert process_count({}) == 4
    assert process_count({"PIPELINE_NPROC": "1"}) == 1
    with pytest.raises(DeviceError, match="only 4 GPU"):
        process_count({"PIPELINE_NPROC": "8"})


def test_global_batch_is_split_over_processes():
    assert per_process_batch(64, 1) == 64 and per_process_batch(64, 8) == 8
    with pytest.raises(ConfigError, match="must be a multiple of 3.*set batch_size to 63 or 66"):
        per_process_batch(64, 3)


def test_worker_rank_comes_from_the_launcher():
    assert distributed.from_env({}) == Dist(0, 1, 0)
    env = {"LOCAL_RANK": "1", "RANK": "3", "WORLD_SIZE": "4"}
    assert distributed.from_env(env) == Dist(3, 4, 1) and not distributed.from_env(env).main


def test_state_digest_sees_every_weight_and_buffer():
    torch.manual_seed(0)
    model = build_model("resnet_tiny", resizer_spec("bilinear", 16), 4)
    same = state_digest(model.state_dict())
    assert state_digest({k: v.clone() for k, v in model.state_dict().items()}) == same
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_mean[0] += 1e-6
    assert state_digest(model.state_dict()) != same


def test_single_process_helpers_are_no_ops():
    one = Dist()
    assert distributed.all_sum([1.5, 2], one, torch.device("cpu")) == [1.5, 2]
    assert distributed.gather("x", one) == ["x"]
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model, as_accel(torch.device("cpu")), one) is model


@pytest.mark.parametrize("env, reason", [
    ({}, None),
    ({"CUDA_VISIBLE_DEVICES": "0,1"}, "CUDA_VISIBLE_DEVICES=0,1"),
    ({"CUDA_VISIBLE_DEVICES": ""}, None),
    ({"CUDA_VISIBLE_DEVICES": "-1"}, None),
    ({"SLURM_STEP_GPUS": "3"}, "SLURM_STEP_GPUS=3"),
    ({"SLURM_GPUS": "a100:2"}, "SLURM_GPUS=a100:2"),
    ({"SLURM_GPUS_ON_NODE": "0"}, None),
    ({"PIPELINE_REQUIRE_GPU": "yes"}, "PIPELINE_REQUIRE_GPU=yes"),
])
def test_gpu_request_from_scheduler_variables(env, reason):
    assert gpu_request(env) == reason


def test_precision_choice():
    assert precision_request({}) == "auto"
    assert amp_dtype("auto", bf16_supported=True) == torch.bfloat16
    assert amp_dtype("auto", bf16_supported=False) == torch.float16
    assert amp_dtype("fp32", bf16_supported=True) is None
    with pytest.raises(DeviceError, match="no bf16 support"):
        amp_dtype("bf16", bf16_supported=False)
    fp16 = Accel(torch.device("cpu"), torch.float16)
    assert fp16.precision == "fp16" and fp16.grad_scaler() is not None
    assert Accel(torch.device("cpu")).grad_scaler() is None


def test_mixed_precision_and_channels_last_paths_train():
    """The GPU code paths (bf16 autocast + channels-last; fp16 + GradScaler), run on the CPU."""
    from pipeline.training.loop import fit
    from tests.conftest import make_recipe
    torch.manual_seed(0)
    x = torch.randn(32, 3, 8, 8)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    batches = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8)]
    for accel in (Accel(torch.device("cpu"), torch.bfloat16, channels_last=True),
                  Accel(torch.device("cpu"), torch.float16)):
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                    torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                    torch.nn.Flatten(), torch.nn.Linear(4, 2))
        accel.prepare(model)
        history = fit(model, lambda epoch: batches, batches, make_recipe(epochs=2, lr=0.1), accel)
        assert all(0 < h["train_loss"] < 10 for h in history)
        assert model[0].weight.is_contiguous(memory_format=torch.channels_last) == \
            accel.channels_last


needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")


@pytest.mark.gpu
@needs_gpu
def test_gpu_trains_in_mixed_precision_and_channels_last(monkeypatch):
    from pipeline.training.device import select_accel
    from pipeline.training.loop import fit
    from tests.conftest import make_recipe
    monkeypatch.delenv("PIPELINE_PRECISION", raising=False)
    accel = select_accel(0)
    assert accel.device.type == "cuda" and accel.channels_last
    assert accel.amp in (torch.bfloat16, torch.float16)
    model = accel.prepare(build_model("resnet_tiny", resizer_spec("learned", 16, 1, 4), 4))
    x, y = torch.randn(16, 3, 32, 32), torch.arange(16) % 4
    history = fit(model, lambda epoch: [(x, y)], [(x, y)], make_recipe(epochs=2, lr=0.01), accel)
    assert len(history) == 2 and all(math.isfinite(h["train_loss"]) for h in history)


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two NVIDIA GPUs")
def test_two_gpus_stay_in_step(project, monkeypatch):
    monkeypatch.setenv("PIPELINE_NPROC", "2")
    log = train_two_processes()
    assert "process 0 of 2 on cuda:0" in log
    assert re.search(r"all 2 processes in step: weights digest \w+", log), log
    assert json.loads(Path("metrics.json").read_text())["test_images"] == 24
