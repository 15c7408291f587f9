"""OpenMP's wait policy: chosen once per stage process from what else runs, the user's kept."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline import cli
from tests.conftest import ROOT


@pytest.mark.parametrize("others,expected", [(0, None), (1, None), (2, "PASSIVE"),
                                             (8, "PASSIVE")])
def test_idle_threads_sleep_only_on_a_busy_machine(monkeypatch, others, expected):
    monkeypatch.setattr(cli, "usable_cores", lambda: 2)
    env: dict[str, str] = {}
    assert cli.choose_omp_wait_policy(env, others=others) == expected
    assert env.get("OMP_WAIT_POLICY") == expected


@pytest.mark.parametrize("mine", [{"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "1000"}])
def test_a_policy_the_user_set_is_kept(mine):
    env = dict(mine)
    assert cli.choose_omp_wait_policy(env, others=99) is None and env == mine


def test_busy_threads_are_counted_and_this_process_is_not():
    """Two busy processes beside this one are seen as at least two (a third process on
    the machine can only add to it); without them, fewer."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        import time

        time.sleep(0.3)
        assert cli.runnable_others() >= 2
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    assert cli.runnable_others() >= 0


def test_the_entry_point_chooses_before_torch_loads():
    """libgomp reads the variable once, when torch loads it: the entry point must choose
    first, and importing the CLI must not load torch."""
    code = "import sys, pipeline.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
    main = (ROOT / "pipeline" / "__main__.py").read_text()
    assert main.index("choose_omp_wait_policy()") < main.index("sys.exit(main())")
