"""The GPU check's CPU side: the script's dry run, its refusals, the report it writes, the
decoder fallback, and the training stage it runs (here on the CPU, tiny). The measurements
themselves need a GPU and run on the device machine (README, GPU check)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
import yaml

from pipeline.dag import plan
from pipeline.loaders import LoaderSpec, build_loader
from tests.conftest import ROOT, resizer_spec
from tests.test_loaders import write_images
from workflow.scripts import gpu_check

SCRIPT = ROOT / "workflow" / "scripts" / "gpu_check.sh"


def script(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run gpu_check.sh with this interpreter (and no carried wheels unless ``env`` says)."""
    none = "/nonexistent-gpu-check-wheels"
    env = {"PYTHON": sys.executable, "GPU_CHECK_WHEELS": none, "GPU_CHECK_PARTS": none, **env}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          env={**os.environ, **env}, check=False, timeout=300)


def test_dry_run_lists_every_check_and_writes_its_plan(tmp_path):
    done = script("--dry-run", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    for name, entry in gpu_check.CHECKS.items():
        assert name in done.stdout and entry.what in done.stdout
    saved = json.loads((tmp_path / "gpu_check.json").read_text())
    assert saved["dry_run"] is True and saved["checks"] == list(gpu_check.CHECKS)
    if not torch.cuda.is_available():
        assert "here: no CUDA GPU visible" in done.stdout
    assert sum(c.seconds for c in gpu_check.CHECKS.values()) <= 540  # fits one 10-min call


@pytest.mark.skipif(torch.cuda.is_available(), reason="refuses only where there is no GPU")
def test_without_a_gpu_it_refuses_before_writing(tmp_path):
    done = script("--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "needs one (use --dry-run" in done.stderr
    assert not (tmp_path / "out").exists()


def test_bad_arguments_are_refused(tmp_path):
    done = script("--only", "nope", "--dry-run")
    assert done.returncode == 2 and "invalid choice: 'nope'" in done.stderr
    assert "environment" in done.stderr  # the choices are listed
    assert gpu_check.main(["--dry-run", "--images", "8", "--out", str(tmp_path)]) == 2


def test_wheels_carried_in_parts_are_reassembled_only_when_complete(tmp_path):
    """A bundle too large for one device call travels in parts over several calls; the script
    unpacks it once every part is there (checked against its sha256) and not before."""
    bundle_dir, parts, wheels = tmp_path / "bundle", tmp_path / "parts", tmp_path / "wheels"
    bundle_dir.mkdir()
    parts.mkdir()
    (bundle_dir / "fake-1.0-py3-none-any.whl").write_bytes(os.urandom(3000))
    subprocess.run(["tar", "-cf", str(parts / "big.tar"), "-C", str(bundle_dir), "."],
                   check=True)
    subprocess.run("sha256sum big.tar > big.tar.sha256 && split -b 2048 big.tar big.tar.part- "
                   "&& rm big.tar", shell=True, cwd=parts, check=True)
    env = {"GPU_CHECK_PARTS": str(parts), "GPU_CHECK_WHEELS": str(wheels)}
    last = sorted(parts.glob("big.tar.part-*"))[-1]
    held = last.read_bytes()
    last.unlink()  # one call's part has not arrived yet
    done = script("--dry-run", "--out", str(tmp_path / "out"), **env)
    assert done.returncode == 0 and "not all; skipped" in done.stderr and not wheels.exists()
    last.write_bytes(held)
    done = script("--dry-run", "--out", str(tmp_path / "out"), **env)
    assert done.returncode == 0 and "skipped" not in done.stderr
    assert (wheels / "fake-1.0-py3-none-any.whl").read_bytes() == (
        bundle_dir / "fake-1.0-py3-none-any.whl").read_bytes()


def test_decoder_falls_back_to_torchvision_with_a_note(monkeypatch):
    monkeypatch.setattr(gpu_check, "dali_problem", lambda: "ImportError: no nvidia.dali")
    decoder, note = gpu_check.decoder_name()
    assert decoder == "torchvision-nvjpeg" and "ImportError: no nvidia.dali" in note
    assert any("decode_jpeg" in line for line in gpu_check.plan_lines(["decode"]))
    monkeypatch.setattr(gpu_check, "dali_problem", lambda: None)
    assert gpu_check.decoder_name() == ("dali-mixed", "")


def test_fallback_decoder_crops_as_the_loaders_do(tmp_path):
    """The fallback (torchvision's decoder, on the CPU here) draws the project's crop boxes:
    its batches are the torch loader's without flips."""
    paths = write_images(tmp_path, [(60, 80), (75, 50), (64, 64), (50, 90)], seed=5)
    manifest = pd.DataFrame({"path": paths, "label": range(4)})
    fallback = gpu_check.NvjpegLoader(paths, 24, 4, (0.35, 1.0), torch.device("cpu"), seed=3)
    (images, rows), = list(fallback)
    spec = LoaderSpec(size=24, batch_size=4, workers=0, train=True, scale=(0.35, 1.0), seed=3,
                      flip=False)
    reference = {int(t): x for xs, ts in build_loader("torch", manifest, spec)
                 for x, t in zip(xs, ts)}
    assert images.dtype == torch.uint8 and images.shape == (4, 3, 24, 24)
    assert all(torch.equal(images[k], reference[int(row)]) for k, row in enumerate(rows))


def test_report_marks_each_check_and_completes(tmp_path, monkeypatch):
    def fails(ctx):
        raise RuntimeError("broken on purpose")

    checks = {"quick": gpu_check.Check("quick", "returns a number", 1, lambda ctx: {"x": 1}),
              "broken": gpu_check.Check("broken", "raises", 1, fails),
              "long": gpu_check.Check("long", "needs more than is left", 10**6, fails)}
    monkeypatch.setattr(gpu_check, "CHECKS", checks)
    ctx = gpu_check.Context(tmp_path, tmp_path, {}, time.monotonic() + 60)
    report = gpu_check.run_checks(list(checks), ctx)
    saved = json.loads((tmp_path / "gpu_check.json").read_text())
    assert saved == json.loads(json.dumps(report)) and saved["complete"] is True
    assert [saved["checks"][n]["status"] for n in checks] == ["ok", "failed", "skipped"]
    assert saved["checks"]["quick"]["result"] == {"x": 1}
    assert "broken on purpose" in saved["checks"]["broken"]["error"]
    assert "## broken: failed" in (tmp_path / "gpu_check.md").read_text()


def test_training_rate_on_a_tiny_model():
    """The train check's step loop (on the CPU here, fp32 and bf16 autocast)."""
    from pipeline.models import build_model

    model = build_model("resnet_tiny", resizer_spec("learned", 16, 1, 4), 4)
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    targets = torch.tensor([0, 1, 2, 3])
    before = [p.detach().clone() for p in model.parameters()]
    for amp in (None, torch.bfloat16):
        assert gpu_check.steps_per_second(model, images, targets, amp, warmup=1, steps=2) > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_pytest_summary_counts():
    assert gpu_check.summary_counts("...\n3 passed, 2 skipped, 1 error in 4.2s\n") == {
        "passed": 3, "skipped": 2, "error": 1}
    assert gpu_check.summary_counts("no tests ran in 0.1s") == {}


def test_stage_check_runs_the_plans_jobs_for_its_run(params):
    names = list(gpu_check.stage_commands(gpu_check.two_epochs(params)))
    assert names == ["synth-imagenet", "prepare-imagenet", "preresize-imagenet", "probe",
                     "train-joint@resnet_tiny-learned_scratch-0"]
    commands = gpu_check.stage_commands(params)
    assert commands[names[-1]][-1] == "--no-live" and commands[names[-1]][0] == sys.executable
    assert gpu_check.two_epochs(params)["classification"]["joint"]["learned_scratch"][
        "epochs"] == 2


def test_upstream_follows_warm_starts(params):
    every = plan.jobs(params)
    learned = every["train-learned@resnet_tiny-learned-0"]
    names = [job.name for job in plan.upstream(learned, every.values())]
    assert "train-baseline@resnet_tiny-default-0" in names and names[0] == "synth-imagenet"
    assert "train-baseline@resnet_tiny-bilinear_hr-0" not in names
    assert plan.upstream(every["synth-imagenet"], every.values()) == []


@pytest.mark.e2e
def test_stage_check_trains_on_the_tiny_configuration(tiny_params, tmp_path):
    """The stage check end to end (on the CPU here): the DAG's data stages, then two epochs of
    the joint run without DVCLive, the outputs in its scratch folder, not the checkout."""
    ctx = gpu_check.Context(tmp_path, tmp_path / "work", tiny_params, time.monotonic() + 600)
    (tmp_path / "work").mkdir()
    result = gpu_check.stage(ctx)
    assert result["epochs"] == 2 and 0 <= result["top1_err"] <= 100
    assert len(result["epoch_images_per_s"]) == 2 and (tmp_path / "stage_train.log").exists()
    assert result["device"] == "cpu" and result["train-joint@resnet_tiny-learned_scratch-0_s"] > 0
    run = tmp_path / "work" / "stage" / "data" / "runs" / "classification" / "resnet_tiny"
    history = pd.read_csv(run / "learned_scratch" / "seed0" / "history.csv")
    assert len(history) == 2 and not (tmp_path / "work" / "stage" / "results" / "live").exists()
    assert yaml.safe_load((tmp_path / "work" / "stage" / "params.yaml").read_text())[
        "classification"]["joint"]["learned_scratch"]["epochs"] == 2
