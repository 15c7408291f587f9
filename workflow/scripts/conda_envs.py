"""Render the conda environment files from uv.lock, so every install path has the same pins.

``environment.yml`` (the whole development environment) and ``workflow/envs/pipeline.yaml``
(what ``snakemake --use-conda`` jobs need) take Python from conda and every other package, at
the version in uv.lock, through conda's pip section. Run ``make envs`` after changing the lock;
tests/test_envs.py fails while the files disagree with it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = "3.11"
TARGETS = {
    ROOT / "environment.yml": ("learned-resizer", []),
    ROOT / "workflow" / "envs" / "pipeline.yaml": ("learned-resizer-pipeline", ["--no-dev"]),
}


def locked_requirements(extra_args: list[str]) -> list[str]:
    """Pinned requirement lines (with markers) that ``uv export`` reads from uv.lock."""
    uv = Path(sys.executable).parent / "uv"
    out = subprocess.run([str(uv), "export", "--frozen", "--no-hashes", "--no-annotate",
                          "--no-header", "--no-emit-project", *extra_args],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip() and not line.startswith("#")]


def render(name: str, requirements: list[str]) -> str:
    """The environment file's text."""
    lines = ["# Generated from uv.lock by workflow/scripts/conda_envs.py (make envs): do not edit.",
             f"name: {name}", "channels:", "  - conda-forge", "dependencies:",
             f"  - python={PYTHON}", "  - pip", "  - pip:"]
    lines += [f'    - "{req}"' for req in requirements]
    return "\n".join(lines) + "\n"


def expected() -> dict[Path, str]:
    """Every environment file and the text it must have."""
    return {path: render(name, locked_requirements(args)) for path, (name, args) in TARGETS.items()}


if __name__ == "__main__":
    for path, text in expected().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
