"""The DAG's own benchmark: every finished stage logs one timing line, and
workflow/scripts/stage_times.py turns the stage logs into results/bench/stages.csv."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest

from pipeline.cli import TIMING
from tests.conftest import ROOT
from tests.fixtures_data import run_in_process

spec = importlib.util.spec_from_file_location("stage_times",
                                              ROOT / "workflow/scripts/stage_times.py")
stage_times = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stage_times)


def timing_log(path, finished: str, wall: float, startup: float, data: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{finished},000 INFO pipeline.x: working\n"
                    f"{finished},500 INFO pipeline.cli: {TIMING} wall_s={wall} "
                    f"startup_wall_s={startup} cpu_s={2 * wall} startup_cpu_s={startup + 1} "
                    f"data_wall_s={data}\n")


def test_a_stage_logs_its_timing_last(tiny_params, tmp_path):
    log = tmp_path / "logs" / "resizer-params.log"
    assert run_in_process(tmp_path / "p.yaml", tiny_params, "resizer-params", "--out",
                          str(tmp_path / "rp"), "--log-file", str(log)) == 0
    found = stage_times.parse_log(log)
    assert found is not None and TIMING in log.read_text().splitlines()[-1]
    assert 0 < found["startup_wall_s"] <= found["wall_s"]
    assert 0 < found["startup_cpu_s"] <= found["cpu_s"]
    assert found["data_wall_s"] == 0  # it loads no images


def test_stage_table_rows_and_total(tmp_path):
    logs = tmp_path / "logs"
    timing_log(logs / "plan.log", "2026-01-01 10:00:10", wall=10, startup=2, data=0)
    timing_log(logs / "train/classification/m/default/seed0.log", "2026-01-01 10:01:00",
               wall=40, startup=5, data=3)
    (logs / "failed.log").write_text("2026-01-01 10:02:00,000 ERROR pipeline.cli: no\n")
    table = stage_times.stage_table(logs)
    assert table["stage"].tolist() == ["plan", "train/classification/m/default/seed0", "total"]
    assert table["compute_wall_s"].tolist() == [8, 32, 40]
    total = table.iloc[-1]
    assert total["wall_s"] == 50 and total["cpu_s"] == 100
    assert total["span_s"] == pytest.approx(60)  # 10:00:00.5 (first start) to 10:01:00.5
    assert table["started"].tolist()[:2] == ["2026-01-01 10:00:00", "2026-01-01 10:00:20"]


def test_no_timing_line_anywhere_is_an_error(tmp_path):
    (tmp_path / "x.log").write_text("nothing\n")
    with pytest.raises(SystemExit, match="run the DAG first"):
        stage_times.stage_table(tmp_path)


def test_written_csv_reads_back(tmp_path, monkeypatch):
    timing_log(tmp_path / "logs" / "tables.log", "2026-01-01 10:00:10", 3, 1, 0)
    monkeypatch.setattr("sys.argv", ["stage_times.py", "--logs", str(tmp_path / "logs"),
                                     "--out", str(tmp_path / "stages.csv")])
    stage_times.main()
    assert pd.read_csv(tmp_path / "stages.csv")["stage"].tolist() == ["tables", "total"]
