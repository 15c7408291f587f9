"""OpenMP's wait policy: chosen once per stage process from the load, the user's own kept."""

from __future__ import annotations

import pytest

from pipeline import cli


@pytest.mark.parametrize("load,expected", [(0.3, None), (1.99, None), (2.0, "PASSIVE"),
                                           (8.0, "PASSIVE")])
def test_idle_threads_sleep_only_on_a_busy_machine(monkeypatch, load, expected):
    monkeypatch.setattr(cli.os, "getloadavg", lambda: (load, 0.0, 0.0))
    monkeypatch.setattr(cli, "usable_cores", lambda: 2)
    env: dict[str, str] = {}
    assert cli.choose_omp_wait_policy(env) == expected
    assert env.get("OMP_WAIT_POLICY") == expected


@pytest.mark.parametrize("mine", [{"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "1000"}])
def test_a_policy_the_user_set_is_kept(monkeypatch, mine):
    monkeypatch.setattr(cli.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    env = dict(mine)
    assert cli.choose_omp_wait_policy(env) is None and env == mine


def test_the_entry_point_chooses_before_torch_loads():
    """libgomp reads the variable once, when torch loads it: the entry point must choose
    first, and importing the CLI must not load torch."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import sys, pipeline.cli; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
    main = (ROOT / "pipeline" / "__main__.py").read_text()
    assert main.index("choose_omp_wait_policy()") < main.index("sys.exit(main())")
