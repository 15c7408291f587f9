"""Versioned outputs kept through a failing Snakemake job (pipeline.dag.kept): what a failed job
removed comes back byte for byte, what a finished job wrote stays, and links a killed run left
behind are put back by the next run."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.dag import kept

PATHS = ["results/tables/a.csv", "results/metrics/x/seed0.json", "results/absent.md"]


def tree(root: Path) -> None:
    for path in PATHS[:2]:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(f"committed {path}\n")


def test_a_removed_file_comes_back_and_a_rewritten_one_stays(tmp_path):
    tree(tmp_path)
    assert kept.keep(PATHS, tmp_path) == 2  # the absent one is not invented
    (tmp_path / PATHS[0]).unlink()  # a failing job's output, removed by Snakemake
    new = tmp_path / PATHS[1]  # a finished job's output, written by rename
    tmp = new.with_name(".new.tmp")
    tmp.write_text("new\n")
    os.replace(tmp, new)
    assert kept.restore(tmp_path) == [PATHS[0]]
    assert (tmp_path / PATHS[0]).read_text() == f"committed {PATHS[0]}\n"
    assert new.read_text() == "new\n"
    assert not (tmp_path / PATHS[2]).exists()
    assert not (tmp_path / kept.KEPT_DIR).exists()


def test_links_a_killed_run_left_are_put_back_by_the_next_run(tmp_path):
    tree(tmp_path)
    kept.keep(PATHS, tmp_path)
    (tmp_path / PATHS[0]).unlink()  # the run is killed here: no restore
    assert kept.keep(PATHS, tmp_path) == 2
    assert (tmp_path / PATHS[0]).read_text() == f"committed {PATHS[0]}\n"
    assert kept.restore(tmp_path) == []


def test_restore_without_a_run_does_nothing(tmp_path):
    assert kept.restore(tmp_path) == []
