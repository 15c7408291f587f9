"""The whole DAG, end to end, under DVC and under Snakemake, on a tiny configuration.

Each engine runs in its own copy of the repository (the files git would commit) with the TINY
overlay written into params.yaml. Checked: both produce every table, byte-identical; a second
`dvc repro` does nothing; Snakemake after DVC finds nothing to do; `dvc exp run -S r=2` reruns
only the stages that read r; `dvc exp show` lists both experiments. On copies of the built DVC
tree: a help-text edit reruns nothing but the plan; a tables.py edit reruns only the stages
that import it; a bad params.yaml fails before any output is removed; after a params change
both engines rerun the same jobs; a Snakemake run and a DVC run refuse each other.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from pipeline.dag import plan
from tests.conftest import ROOT
from tests.dags import snakemake_needrun
from tests.projects import env, outputs, project_copy, rename_module, sh

pytestmark = pytest.mark.e2e
REPORTED = list(plan.REPORT_TABLES.values())
TABLES = [f"results/tables/{name}.{ext}"
          for name in (*plan.TABLES, "probe", "probe_attenuated", "resizer_params")
          for ext in ("csv", "md", "html")]
FIGURES = [f"results/figures/{name}.png" for name in plan.FIGURES]


@pytest.fixture(scope="module")
def dvc_project(tmp_path_factory, tiny) -> Path:
    project = project_copy(tmp_path_factory.mktemp("dvc"), tiny)
    sh(project, "dvc", "repro")
    return project


def test_dvc_writes_every_table_and_figure(dvc_project, tiny):
    for rel in TABLES + FIGURES:
        assert (dvc_project / rel).is_file(), rel
    rows = (dvc_project / "results/tables/classification.csv").read_text().splitlines()
    modes = {"default", "bilinear_hr", "bilinear_noaa", "band_energy", "bilinear_continued",
             "learned", "muller", "learned_scratch", "learned_warm", "band_energy_continued"}
    second = {"default", "bilinear_hr", "bilinear_continued", "learned"}  # the second regime's
    assert len(rows) == 1 + len(modes) + len(second) and rows[0].startswith("regime,")
    cells = [row.split(",") for row in rows[1:]]
    assert {c[2] for c in cells if c[0] == "removed"} == modes
    assert {c[2] for c in cells if c[0] == "attenuated"} == second
    assert all(column in rows[0] for column in ("health", "delta_vs_default", "gap_recovered",
                                                "delta_vs_control"))
    diagnostics = (dvc_project / "results/tables/diagnostics.csv").read_text().splitlines()
    assert "residual_peak" in diagnostics[0]
    assert {"bilinear_noaa", "band_energy", "learned", "muller", "learned_scratch",
            "learned_warm", "band_energy_continued"} <= {
        row.split(",")[2] for row in diagnostics[1:]}
    assert "fine cue" in (dvc_project / "results/tables/probe.md").read_text()
    iqa = (dvc_project / "results/tables/iqa.csv").read_text().splitlines()
    assert "srcc_mean_mean" in iqa[0] and len(iqa) == 1 + 3
    shown = json.loads(sh(dvc_project, "dvc", "plots", "show", "--json"))
    assert set(shown["data"]) == {f"{task}: {label}" for task, curves in plan.CURVES.items()
                                  for _, label in curves}, list(shown["data"])
    assert not shown.get("errors"), shown["errors"]
    values = shown["data"]["classification: train loss"][0]["content"]["data"]["values"]
    runs = [job for job in plan.jobs(tiny).values() if job.run and job.run[0] == "classification"]
    assert len({v["filename"] for v in values}) == len(runs)  # every run, overlaid


def test_the_metrics_file_holds_numbers_only(dvc_project):
    """`dvc metrics show` reads one file, the tables' headline numbers: no strings, no
    per-run descriptions, no per-epoch values."""
    shown = json.loads(sh(dvc_project, "dvc", "metrics", "show", "--json"))
    files = {path: data["data"] for rev in shown.values() for path, data in rev["data"].items()}
    assert list(files) == [plan.SUMMARY]

    def numbers(node) -> bool:
        return (all(numbers(v) for v in node.values()) if isinstance(node, dict)
                else isinstance(node, (int, float)) and not isinstance(node, bool))

    assert numbers(files[plan.SUMMARY]) and "top1" in files[plan.SUMMARY]


def test_engines_agree_byte_for_byte(dvc_project, snakemake_project):
    """Two runs from scratch, in two directories and two sets of fresh processes (one per
    engine), write the same bytes: manifests, checkpoints, histories, metrics, per-epoch curves,
    tables and figures (the determinism the two engines' agreement rests on)."""
    a, b = outputs(dvc_project), outputs(snakemake_project)
    assert set(a) == set(b)
    assert {*TABLES, *FIGURES} <= set(a) and any(p.endswith("model.pt") for p in a)
    differ = sorted(p for p in a if a[p] != b[p])
    assert not differ, f"outputs differ between the two runs from scratch: {differ}"


def test_second_dvc_repro_does_nothing(dvc_project):
    out = sh(dvc_project, "dvc", "repro")
    assert "Running stage" not in out and "up to date" in out


def test_snakemake_after_dvc_has_nothing_to_do(dvc_project):
    out = sh(dvc_project, "snakemake", "--cores", "2", "--dry-run")
    assert "Nothing to be done" in out, out


def built_copy(dvc_project: Path, dest: Path) -> Path:
    """A copy of the built tiny DVC tree (cache, data and git history included)."""
    shutil.copytree(dvc_project, dest, symlinks=True)
    return dest


def ran(out: str) -> set[str]:
    """The stages `dvc repro` ran, from its output."""
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}


def test_help_text_edit_reruns_nothing_but_the_plan(dvc_project, tmp_path):
    project = built_copy(dvc_project, tmp_path / "p")
    stage = project / "pipeline/stages/train.py"
    stage.write_text(stage.read_text().replace('help="timm model name"',
                                               'help="the timm name of the backbone"'))
    assert "changed deps" in sh(project, "dvc", "status", "plan")
    assert ran(sh(project, "dvc", "repro")) == {"plan"}
    assert "up to date" in sh(project, "dvc", "status")


def test_moving_a_module_to_another_wing_reruns_nothing_but_the_plan(dvc_project, tmp_path):
    """A pure move (the module's imports fixed) changes no stage's code digest."""
    project = built_copy(dvc_project, tmp_path / "p")
    rename_module(project, "pipeline.core.noise", "pipeline.report.noise")
    assert "changed deps" in sh(project, "dvc", "status", "plan")
    assert ran(sh(project, "dvc", "repro")) == {"plan"}
    assert "up to date" in sh(project, "dvc", "status")


def test_tables_edit_reruns_only_the_stages_that_import_it(dvc_project, tmp_path):
    from pipeline.dag.codehash import closure
    from pipeline.dag.plan import STAGES, command_modules

    project = built_copy(dvc_project, tmp_path / "p")
    tables = project / "pipeline/report/tables.py"
    tables.write_text(tables.read_text() + "\nMARKER = 1\n")
    readers = {s.name for s in STAGES if "pipeline.report.tables" in closure(command_modules(s.command))}
    reran = ran(sh(project, "dvc", "repro")) - {"plan"}
    assert "tables" in reran and reran <= readers, (reran, readers)
    assert not any(name.startswith(("train-", "iqa-")) for name in reran)


def snapshot(project: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under results/ and data/runs/."""
    return {str(p.relative_to(project)): (p.stat().st_size, p.stat().st_mtime_ns)
            for top in ("results", "data/runs") for p in (project / top).rglob("*")
            if p.is_file()}


@pytest.mark.parametrize("edit, message", [
    (lambda p: p.update(r=0), "r = 0 is invalid"),
    (lambda p: p.update(learning_rate=0.1), "unknown key 'learning_rate'"),
    (lambda p: p["classification"]["backbones"].append("resnet5O"), "'resnet5O' is not a timm model"),
])
def test_bad_params_fail_before_any_output_is_removed(dvc_project, tmp_path, edit, message):
    project = built_copy(dvc_project, tmp_path / "p")
    params = yaml.safe_load((project / "params.yaml").read_text())
    edit(params)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = snapshot(project)
    result = subprocess.run(["dvc", "repro"], cwd=project, env=env(), capture_output=True,
                            text=True)
    assert result.returncode != 0 and message in result.stdout + result.stderr
    assert ran(result.stdout) == {"plan"}
    assert snapshot(project) == before


def test_an_unfinished_run_never_shows_in_dvc_metrics_show(dvc_project, tmp_path):
    """A run that never finished has no metrics file (the stage writes it only at the end; a
    rerun keeps the last finished run's, committed in git, until it replaces it whole) and no
    per-epoch file stands in for it. `dvc metrics show` reads only the tables' summary, which
    the tables stage writes after every run has finished, and `dvc status` names the
    unfinished run."""
    project = built_copy(dvc_project, tmp_path / "p")
    run = "classification/resnet_tiny/learned/seed0"
    for rel in (f"results/metrics/{run}.json", f"data/runs/{run}/model.pt"):
        (project / rel).unlink()
    shown = json.loads(sh(project, "dvc", "metrics", "show", "--json"))
    assert [path for rev in shown.values() for path in rev["data"]] == [plan.SUMMARY]
    assert "train-learned@resnet_tiny-learned-0" in sh(project, "dvc", "status")


def test_both_engines_rerun_the_same_jobs_after_a_params_change(dvc_project, tmp_path):
    project = built_copy(dvc_project, tmp_path / "p")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["n"] = 8
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    smk = snakemake_needrun(project)  # parsing writes the digests, as DVC's plan stage does
    dvc = ran(sh(project, "dvc", "repro")) - {"plan"}
    assert dvc == smk and any(name.startswith("train-learned@") for name in dvc), (dvc, smk)
    assert "Nothing to be done" in sh(project, "snakemake", "--cores", "1", "--dry-run")


def test_exp_run_r2_reruns_only_r_readers(dvc_project):
    out = sh(dvc_project, "dvc", "exp", "run", "-S", "r=2", "--name", "r2")
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    readers = ("train-learned@", "train-joint@", "train-warm@", "iqa-learned@",
               "attenuated-learned@", "transfer-", "bench-loop")  # times the learned resizer too
    downstream = ("plan", "tables", "figures", "resizer-probe")
    assert ran and all(s.startswith(readers) or s in downstream for s in ran), ran
    assert any(s.startswith("train-learned@") for s in ran)
    assert any(s.startswith("iqa-learned@") for s in ran)
    assert any(s.startswith("attenuated-learned@") for s in ran)
    shown = sh(dvc_project, "dvc", "exp", "show", "--csv")
    assert "r2" in shown and "top1.resnet_tiny/learned" in shown


def test_snakemake_report_holds_every_table_and_figure(snakemake_project):
    sh(snakemake_project, "snakemake", "--report", "report.html")
    html = (snakemake_project / "report.html").read_text(errors="replace")
    for rel in REPORTED + FIGURES:
        assert Path(rel).name in html, rel
    assert "Cross-baseline transfer" in html and "learned minus" in html  # captions


def wait_until(condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_snakemake_refuses_to_start_while_dvc_runs_on_the_tree(dvc_project, tmp_path):
    from pipeline.dag.engine_lock import dvc_processes

    project = built_copy(dvc_project, tmp_path / "p")
    # its own process group, interrupted as Ctrl-C interrupts it (the whole group: DVC waits
    # for the stage it runs, which must get the signal too)
    dvc = subprocess.Popen(["dvc", "repro", "--force"], cwd=project, env=env(),  # minutes
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        wait_until(lambda: dvc_processes(project))
        result = subprocess.run(["snakemake", "--cores", "1", "--force",
                                 "results/tables/resizer_params.csv"], cwd=project, env=env(),
                                capture_output=True, text=True, timeout=300)
        out = result.stdout + result.stderr
        assert dvc.poll() is None, "DVC finished before Snakemake started: not tested"
        assert result.returncode != 0 and f"DVC is running on this tree (pid {dvc.pid}" in out, out
    finally:
        os.killpg(dvc.pid, signal.SIGINT)
        dvc.wait(timeout=120)


def test_dvc_refuses_to_start_while_snakemake_runs_on_the_tree(dvc_project, tmp_path):
    from pipeline.dag.engine_lock import DVC_LOCK

    project = built_copy(dvc_project, tmp_path / "p")
    target = "results/metrics/classification/resnet_tiny/default/seed0.json"
    smk = subprocess.Popen(["snakemake", "--cores", "1", "--force", target], cwd=project,
                           env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    lock = project / DVC_LOCK
    try:
        wait_until(lambda: lock.is_file() and "snakemake" in lock.read_text())
        result = subprocess.run(["dvc", "repro"], cwd=project, env=env(), capture_output=True,
                                text=True, timeout=300)
        assert result.returncode != 0 and "Unable to acquire lock" in result.stderr
        result = subprocess.run(["python", "-m", "pipeline.dag.engine_lock"], cwd=project, env=env(),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        assert f"Snakemake is running on this tree (pid {smk.pid})" in result.stderr
    finally:
        assert smk.wait(timeout=300) == 0, smk.stdout.read()
    sh(project, "python", "-m", "pipeline.dag.engine_lock")  # its lock ended with it


def repro_recipe() -> list[list[str]]:
    """The commands of the Makefile's `repro` target after setup, as `make repro` runs them."""
    lines = (ROOT / "Makefile").read_text().split("\nrepro:", 1)[1].split("\n\n", 1)[0]
    return [shlex.split(line.strip()) for line in lines.splitlines()[1:]
            if line.startswith("\t") and not line.strip().startswith("@")]


def dvc_stale(project: Path) -> set[str]:
    """Stages `dvc status` names (the plan stage left out: Snakemake plans at parse time)."""
    return set(json.loads(sh(project, "dvc", "status", "--json"))) - {"plan"}


def test_engines_agree_on_a_fresh_clone_and_after_make_repro(dvc_project, tmp_path):
    """A clone of a repository whose results are committed, with the file times git gives it:
    Snakemake plans the stages `dvc status` names; after the repro recipe (Snakemake trains,
    DVC records it and runs the rest, skipping what comes back unchanged), neither engine has
    anything to do and git sees no change."""
    origin = built_copy(dvc_project, tmp_path / "origin")
    sh(origin, "git", "add", "-A")  # results, dvc.lock and the params they come from
    sh(origin, "git", "commit", "-qm", "results")
    sh(tmp_path, "git", "clone", "-q", str(origin), "clone")
    clone = tmp_path / "clone"
    stale = dvc_stale(clone)
    assert stale and stale == snakemake_needrun(clone), (stale, snakemake_needrun(clone))
    recipe = repro_recipe()
    assert ["python", "-m", "pipeline", "repro"] in recipe, recipe
    out = "".join(sh(clone, *cmd) for cmd in recipe)
    assert "(Rule: train)" in out, out  # Snakemake trained the runs
    assert "didn't change, skipping" in out, out  # DVC found the rest unchanged
    assert "Nothing to be done" in sh(clone, "snakemake", "--cores", "1", "--dry-run")
    assert sh(clone, "git", "status", "--porcelain") == ""  # times only, never contents
    assert dvc_stale(clone) == set(), "DVC sees a change Snakemake's touch made"
    # every file the report shows has its job's record (none "Missing metadata")
    report = subprocess.run(["snakemake", "--report", "report.html"], cwd=clone, env=env(),
                            capture_output=True, text=True, timeout=600)
    assert report.returncode == 0 and "Report created" in report.stdout + report.stderr
    assert "Missing metadata" not in report.stdout + report.stderr
    (clone / "report.html").unlink()


@pytest.mark.parametrize("engine", [["dvc", "repro"], ["snakemake", "--cores", "1"]],
                         ids=["dvc", "snakemake"])
def test_a_failing_stage_leaves_the_committed_results_as_they_were(dvc_project, tmp_path,
                                                                   engine):
    """ImageNet archives that pass the up-front checks but whose val archive is cut short:
    prepare-imagenet fails, and the results it writes (versioned in git) are still the
    committed ones, byte for byte, under either engine (Snakemake removes a job's outputs
    before it runs it and again when it fails)."""
    from tests.fixtures_data import make_imagenet_archives

    project = built_copy(dvc_project, tmp_path / "p")
    sh(project, "git", "add", "-A", "results", "dvc.lock")
    sh(project, "git", "commit", "-qm", "results")
    archives = make_imagenet_archives(tmp_path / "imagenet").root
    val = archives / "ILSVRC2012_img_val.tar"
    val.write_bytes(val.read_bytes()[:3000])
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["imagenet"].update(root=str(archives), layout="archives",
                                      extract_to=str(tmp_path / "extracted"))
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = subprocess.run(engine, cwd=project, env=env(), capture_output=True,
                            text=True, timeout=600)
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "the archive ends early or is damaged" in out, out
    if engine[0] == "snakemake":
        assert "Error in rule prepare_imagenet" in out, out
        assert "results/data/imagenet_report.csv" in out  # removed, then put back
    else:
        assert "prepare-imagenet" in ran(result.stdout)
    assert sh(project, "git", "status", "--porcelain", "results") == ""
    assert not (project / ".snakemake/pipeline-kept").exists()
