"""Command ``repro``: the whole DAG with its training runs side by side: Snakemake trains every
run (as many at once as ``--cores``, one ``train.cpu_threads`` each), DVC records what it built
and runs the rest.

Not a DAG stage: ``make repro`` runs it. ``dvc repro`` alone runs one stage at a time, which
leaves all but one core idle while a one-thread run trains. So the training runs and what they
need (data, probes) are built by Snakemake's rule ``training``; ``dvc commit`` then writes the
hashes of exactly those stages and their upstream into dvc.lock (what `dvc repro` would have
recorded: both engines run the same commands on the same inputs); ``dvc repro`` runs the
remaining stages (tables, figures, benchmarks), skipping those whose inputs come back
unchanged; and ``snakemake --touch`` gives every job Snakemake's record (times and metadata
only, never contents), so that both engines find the tree up to date and ``snakemake
--report`` knows every file's job.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.dag import engine_lock
from pipeline.dag.plan import STAGES
from pipeline.params.config import load_params

log = logging.getLogger(__name__)
#: Snakemake's rule whose inputs are every training run's outputs (the Snakefile).
TRAINING_RULE = "training"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cores", default="all",
                        help="cores for Snakemake: runs trained side by side (default: all)")


def training_stages() -> list[str]:
    """dvc.yaml's training stages (one per family and task; DVC expands their matrices)."""
    return [stage.name for stage in STAGES if stage.run]


def steps(cores: str) -> list[list[str]]:
    """The commands, in order."""
    touch = ["snakemake", "--touch", "--forceall", "--cores", "1", "--quiet", "all"]
    return [["snakemake", TRAINING_RULE, "--cores", cores, "--quiet", "rules"],
            ["dvc", "commit", "--force", "--with-deps", "--quiet", *training_stages()],
            ["dvc", "repro"], touch]


def main(args: argparse.Namespace) -> int:
    load_params(args.params)  # a bad params.yaml stops here, before any engine starts
    engine_lock.check_for_dvc(Path("."))  # Snakemake refuses a running DVC itself
    for command in steps(args.cores):
        log.info("$ %s", " ".join(command))
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            raise PipelineError(f"`{' '.join(command[:2])}` failed (exit {done.returncode}): see "
                                f"its messages above; fix the cause and run `make repro` again "
                                f"(finished runs are kept)")
    return 0

