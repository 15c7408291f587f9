"""Faults a careful user meets, each caught with a message that names the file and the fix:
a resume state cut short (set aside, the run starts over), a checkpoint cut short (exit 2,
CheckpointError), a manifest cut at a line or in the middle of one (the stage stops before
training), temporary files of a killed writer (removed by the next write), output modes (the
user's umask, not 0600) and a killed run (no final metrics, no summary that looks final).
The kill-then-resume case itself is in tests/test_resume.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.core.io import UMASK, atomic_dir, write_json
from tests.conftest import ROOT
from tests.test_resume import kill_once_written

TRAIN = ["train", "--task", "classification", "--backbone", "resnet_tiny", "--seed", "0"]


def stage(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m pipeline`` in ``cwd``: its exit status and output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


def train(cwd: Path, name: str, mode: str = "default", manifests: str = "manifests",
          *extra: str) -> subprocess.CompletedProcess:
    return stage(cwd, *TRAIN, "--mode", mode, "--manifests", manifests, "--out", f"runs/{name}",
                 "--metrics", f"metrics/{name}.json", "--live", f"live/{name}.csv", *extra)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The tiny synthetic set prepared, and the default run trained (2 epochs)."""
    from tests.conftest import TINY, deep_merge

    root = tmp_path_factory.mktemp("faults")
    params = deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    params["train"]["scratch"]["epochs"] = 2
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    for args in (["synth-imagenet", "--out", "data/synthetic/imagenet"],
                 ["prepare-imagenet", "--out", "manifests", "--report", "report.csv",
                  "--summary", "summary.json"]):
        assert stage(root, *args).returncode == 0
    assert train(root, "default").returncode == 0
    return root


def test_a_resume_state_cut_short_is_set_aside_and_the_run_starts_over(project):
    state = project / "runs/cut/resume.pt"
    state.parent.mkdir(parents=True)
    whole = (project / "runs/default/model.pt").read_bytes()
    state.write_bytes(whole[: len(whole) // 2])  # a torch zip cut in the middle
    result = train(project, "cut")
    assert result.returncode == 0, result.stderr
    assert f"resume state {state.relative_to(project)} does not load" in result.stderr
    assert (project / "runs/cut/resume.pt.unreadable").is_file() and not state.exists()
    assert (project / "runs/cut/model.pt").read_bytes() == whole, "started over, same result"


def test_a_checkpoint_cut_short_is_a_checkpoint_error_naming_it(project):
    cut = project / "runs/default-cut/model.pt"
    cut.parent.mkdir(parents=True)
    whole = (project / "runs/default/model.pt").read_bytes()
    cut.write_bytes(whole[: len(whole) // 3])
    result = train(project, "continued", "bilinear_continued", "manifests", "--init", str(cut))
    assert result.returncode == 2
    assert f"{cut.relative_to(project)}: not a readable checkpoint" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("cut", ["at a line", "mid-line"])
def test_a_manifest_cut_short_stops_the_stage_before_training(project, cut):
    damaged = project / f"manifests-{cut.replace(' ', '-')}"
    shutil.copytree(project / "manifests", damaged)
    lines = (damaged / "train.csv").read_text().splitlines(keepends=True)
    kept = "".join(lines[: len(lines) // 2])
    (damaged / "train.csv").write_text(kept if cut == "at a line" else kept[:-7])
    result = train(project, f"on-{damaged.name}", "default", damaged.name)
    assert result.returncode == 2
    assert f"{damaged.name}/train.csv has changed since its stage wrote it" in result.stderr
    assert not (project / f"runs/on-{damaged.name}").exists(), "no training started"


def test_an_image_deleted_after_prepare_is_one_error_before_training(project, tmp_path):
    copy = tmp_path / "p"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("runs", "metrics", "live"))
    train_csv, val_csv = (pd.read_csv(copy / f"manifests/{s}.csv") for s in ("train", "val"))
    assert not Path(train_csv["path"][0]).is_absolute()  # the copy's own images
    (copy / train_csv["path"][3]).unlink()
    (copy / val_csv["path"][1]).write_bytes(b"")
    result = train(copy, "gone")
    assert result.returncode == 2, result.stderr
    assert f"manifests/train.csv: 1 of {len(train_csv)} images it lists are gone or empty" \
        in result.stderr and train_csv["path"][3] in result.stderr
    assert "Traceback" not in result.stderr and not (copy / "runs/gone").exists()
    (copy / train_csv["path"][3]).write_bytes((project / train_csv["path"][3]).read_bytes())
    result = train(copy, "gone")
    assert result.returncode == 2 and f"{val_csv['path'][1]} (empty)" in result.stderr


def test_progress_bars_in_a_log_are_one_line_per_update(project):
    """stderr that is not a terminal (Snakemake's and SLURM's job logs) gets a line per
    progress update, not carriage returns piling up on one line."""
    result = stage(project, "synth-ava", "--out", "ava-progress")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "\r" not in result.stderr and max(map(len, lines)) < 200, result.stderr
    assert sum(line.startswith("synth ava:") for line in lines) >= 2
    assert any("100%" in line for line in lines if line.startswith("synth ava:"))


def test_a_manifest_folder_without_its_index_is_refused(project):
    bare = project / "manifests-by-hand"
    shutil.copytree(project / "manifests", bare)
    (bare / "manifests.json").unlink()
    result = train(project, "by-hand", "default", bare.name)
    assert result.returncode == 2 and "no manifests.json" in result.stderr


def test_leftovers_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    (tmp_path / ".summary.json.k1ll3d.tmp").write_text("{")
    (tmp_path / ".folder.k1ll3d.tmp").mkdir()
    (tmp_path / ".folder.k1ll3d.tmp" / "image.jpg").write_bytes(b"half an image")
    write_json(tmp_path / "summary.json", {"ok": True})
    with atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "a.txt").write_text("a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "summary.json"]


def test_outputs_get_the_users_umask(project):
    assert (project / "report.csv").stat().st_mode & 0o777 == 0o666 & ~UMASK
    assert (project / "manifests").stat().st_mode & 0o777 == 0o777 & ~UMASK
    assert (project / "manifests/train.csv").stat().st_mode & 0o777 == 0o666 & ~UMASK
    assert (project / "runs/default/model.pt").stat().st_mode & 0o777 == 0o666 & ~UMASK


def test_ctrl_c_says_in_one_line_where_a_rerun_resumes(project):
    args = [*TRAIN, "--mode", "default", "--manifests", "manifests", "--out", "runs/stopped",
            "--metrics", "metrics/stopped.json", "--live", "live/stopped.csv"]
    code, stderr = kill_once_written(project, args, project / "runs/stopped/resume.pt",
                                     signal.SIGINT)
    assert code == 130 and "Traceback" not in stderr, stderr[-2000:]
    assert "interrupted; epoch 1 was saved in runs/stopped/resume.pt, and a rerun resumes " \
           "after it" in stderr
    assert not (project / "metrics/stopped.json").exists()


def test_a_killed_run_leaves_nothing_that_looks_finished(project):
    args = [*TRAIN, "--mode", "default", "--manifests", "manifests", "--out", "runs/killed",
            "--metrics", "metrics/killed.json", "--live", "live/killed.csv"]
    kill_once_written(project, args, project / "runs/killed/resume.pt")
    assert not (project / "metrics/killed.json").exists(), "the final metrics come at the end"
    assert pd.read_csv(project / "live/killed.csv")["epoch"].tolist() == [1], \
        "the per-epoch curve holds the epochs that finished"
