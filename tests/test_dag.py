"""The DVC and Snakemake DAGs are the same DAG, and each stage's code deps are exact."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.dags import dvc_stages, snakemake_stages

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


@pytest.fixture(scope="module")
def dags() -> tuple[dict, dict]:
    return dvc_stages(ROOT), snakemake_stages(ROOT)


def test_same_stages(dags):
    dvc, smk = dags
    assert sorted(dvc) == sorted(smk)


@pytest.mark.parametrize("field", ["cmd", "deps", "params", "outs"])
def test_same_fields(dags, field):
    dvc, smk = dags
    drift = {}
    for name in sorted(set(dvc) & set(smk)):
        a, b = getattr(dvc[name], field), getattr(smk[name], field)
        if a != b:
            drift[name] = (a, b) if field == "cmd" else {"only in dvc.yaml": sorted(a - b),
                                                         "only in Snakefile": sorted(b - a)}
    assert not drift, f"{field} differs between dvc.yaml and the Snakefile: {drift}"


def import_closure(module: str) -> set[str]:
    """pipeline/ files imported by ``python -m pipeline`` running ``module``."""
    code = (f"import sys, pathlib, pipeline.cli, {module}; root = pathlib.Path('pipeline').resolve();"
            "print('\\n'.join(str(pathlib.Path(m.__file__).resolve().relative_to(root.parent))"
            " for m in list(sys.modules.values()) if getattr(m, '__file__', None)"
            " and pathlib.Path(m.__file__).resolve().is_relative_to(root)))")
    out = subprocess.run([PY, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    return set(out.stdout.split()) | {"pipeline/__main__.py"}


def test_code_deps_are_import_closures(dags):
    """Every stage depends on exactly the code it imports (no stale or missing file)."""
    dvc, _ = dags
    from pipeline.cli import STAGES

    for stage in dvc.values():
        sub = stage.cmd.split()[3]  # python -m pipeline <sub-command>
        closure = import_closure(f"pipeline.stages.{STAGES[sub][0]}")
        code = {d for d in stage.deps if d.startswith("pipeline/")}
        assert code == closure, (f"{stage.name}: code deps differ from its imports: missing "
                                 f"{sorted(closure - code)}, extra {sorted(code - closure)}")


def test_only_main_learned_and_transfer_stages_read_r_and_n(dags):
    """`dvc exp run -S r=2` reruns the main learned runs and the transfers built on them, never
    the ablation grid (its r and n come from the matrix) or the fixed resizers."""
    dvc, _ = dags
    readers = {stage.name.split("@")[0] for stage in dvc.values() if {"r", "n"} & stage.params}
    assert {"train-learned", "train-joint", "iqa-learned"} <= readers
    assert readers <= {"train-learned", "iqa-learned", "transfer-classification",
                       "transfer-iqa", "train-joint", "figures", "resizer-probe"}


def test_snakemake_lint():
    result = subprocess.run([str(Path(PY).parent / "snakemake"), "--lint"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
