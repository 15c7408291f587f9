"""`python -m pipeline compare`: a rerun's tables against the committed ones, judged by noise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.core.errors import PipelineError
from pipeline.report.compare import TABLES, compare_rows, compare_tables, report

ROOT = Path(__file__).resolve().parents[1]


def table(rows: list[tuple[str, str, float, float | None, int]], metric: str = "top1_err",
          task: str | None = None) -> pd.DataFrame:
    """A main table's identity and noise columns: (backbone, mode, mean, std, seeds)."""
    frame = pd.DataFrame(rows, columns=["backbone", "mode", f"{metric}_mean", f"{metric}_std",
                                        "seeds"]).assign(**{f"{metric}_se": 1.8})
    return frame if task is None else frame.assign(task=task)


def test_rows_judged_by_the_larger_of_seed_spread_and_test_error():
    head = table([("a", "default", 70.0, 1.0, 3), ("a", "learned", 60.0, 6.0, 3),
                  ("a", "gone", 50.0, None, 1)], task="classification")
    here = table([("a", "default", 74.0, 1.0, 3), ("a", "learned", 68.0, 6.0, 3),
                  ("a", "new", 40.0, None, 1)], task="classification")
    rows = compare_rows(head, here).set_index("mode")
    # default: s.e. of each mean 1.8/sqrt(3) (test error beats the seed spread), 4 points apart
    assert rows.loc["default", "head_se"] == pytest.approx(1.8 / 3 ** 0.5)
    assert rows.loc["default", "z"] == pytest.approx(4.0 / (2 ** 0.5 * 1.8 / 3 ** 0.5))
    assert rows.loc["default", "verdict"] == "differs"
    # learned: 8 points apart, but the seeds spread by 6: within noise
    assert rows.loc["learned", "head_se"] == pytest.approx(6.0 / 3 ** 0.5)
    assert rows.loc["learned", "verdict"] == "within noise"
    assert rows.loc["gone", "verdict"] == "only in HEAD"
    assert rows.loc["new", "verdict"] == "only here"


def test_identical_rows_are_within_noise_at_any_z():
    head = table([("a", "default", 70.0, None, 1)], task="classification")
    rows = compare_rows(head, head.copy(), z=0.0)
    assert rows["verdict"].tolist() == ["within noise"] and rows["z"].tolist() == [0.0]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A checkout whose HEAD holds every compared table (transfer and ablation empty)."""
    tables = tmp_path / "results" / "tables"
    tables.mkdir(parents=True)
    table([("a", "default", 70.0, 1.0, 3), ("a", "learned", 60.0, 1.0, 3)]).to_csv(
        tables / "classification.csv", index=False)
    table([("a", "default", 0.5, 0.01, 3)], metric="srcc_mean").assign(srcc_mean_se=0.05).to_csv(
        tables / "iqa.csv", index=False)
    for stem in ("transfer", "ablation"):
        (tables / f"{stem}.csv").write_text("\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tables")
    return tmp_path


def test_checkout_compared_with_head(repo: Path):
    tables = repo / "results" / "tables"
    identical, rows = compare_tables(tables, root=repo)
    assert identical == dict.fromkeys(TABLES, True)
    assert set(rows["verdict"]) == {"within noise"} and len(rows) == 3
    frame = pd.read_csv(tables / "classification.csv")
    frame.loc[1, "top1_err_mean"] = 50.0  # 10 points, s.e. 1.8/sqrt(3) each: far beyond noise
    frame.to_csv(tables / "classification.csv", index=False)
    identical, rows = compare_tables(tables, root=repo)
    assert not identical["classification"] and identical["iqa"]
    differs = rows[rows["verdict"] == "differs"]
    assert differs[["table", "backbone", "mode"]].values.tolist() == [
        ["classification", "a", "learned"]]
    text = report(identical, rows, "HEAD", 2.0)
    assert "DIFFERS classification: a/learned (top1_err): 60 ± 1 in HEAD, 50 ± 1 here" in text
    assert "3 rows: 2 within noise, 1 differs, 0 only in HEAD, 0 only here" in text


def test_regimes_are_rows_of_their_own(repo: Path):
    """A table with a regime column keys its rows by regime (the same backbone/mode in both
    regimes are two rows); against a committed table from before regimes, that table's rows
    are the first regime's."""
    tables = repo / "results" / "tables"
    frame = pd.read_csv(tables / "classification.csv")
    second = frame.assign(regime="attenuated", top1_err_mean=[20.0, 10.0])
    pd.concat([frame.assign(regime="removed"), second]).to_csv(tables / "classification.csv",
                                                               index=False)
    identical, rows = compare_tables(tables, root=repo)
    mine = rows[rows["table"] == "classification"]
    assert mine[["task", "mode", "verdict"]].values.tolist() == [
        ["classification", "default", "within noise"], ["classification", "learned", "within noise"],
        ["attenuated", "default", "only here"], ["attenuated", "learned", "only here"]]
    assert "ONLY HERE classification: attenuated/a/learned (top1_err)" in report(
        identical, rows, "HEAD", 2.0)


def run_compare(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "compare", *args], cwd=repo,
                          capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_command_strict_fails_only_on_a_difference(repo: Path):
    assert run_compare(repo, "--strict").returncode == 0
    path = repo / "results" / "tables" / "iqa.csv"
    frame = pd.read_csv(path)
    frame.loc[0, "srcc_mean_mean"] = 0.1
    frame.to_csv(path, index=False)
    done = run_compare(repo)
    assert done.returncode == 0 and "DIFFERS iqa: a/default (srcc_mean)" in done.stdout
    assert run_compare(repo, "--strict").returncode == 1


def test_clear_errors_without_tables_or_git(repo: Path, tmp_path_factory):
    (repo / "results" / "tables" / "ablation.csv").unlink()
    with pytest.raises(PipelineError, match="ablation.csv is missing: run the pipeline"):
        compare_tables(repo / "results" / "tables", root=repo)
    bare = tmp_path_factory.mktemp("nogit")
    (bare / "t").mkdir()
    for stem in TABLES:
        (bare / "t" / f"{stem}.csv").write_text("\n")
    with pytest.raises(PipelineError, match="needs the git checkout"):
        compare_tables(bare / "t", root=bare)
    done = run_compare(bare, "--tables", "t")
    assert done.returncode == 2 and "needs the git checkout" in done.stderr
