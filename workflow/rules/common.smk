# The plan, shared by the rule files. params.yaml is validated here, at parse time, with the
# project's own messages, and the digests in data/plan/ are written (what DVC's `plan` stage
# does), before any job runs; the Snakemake processes a cluster job starts for itself only
# expand the plan (checking the backbones imports torch and timm: 5 s a process). Every rule
# takes its command, inputs and outputs from the plan (pipeline/dag/plan.py), the description
# dvc.yaml is generated from.
import re
import sys
from pathlib import Path
from shutil import which

import yaml
from snakemake.settings.types import DeploymentMethod

sys.path.insert(0, workflow.basedir)
from pipeline.dag import engine_lock, kept, plan  # noqa: E402
from pipeline.params.config import ConfigError, validate  # noqa: E402
from pipeline.params.runs import TASKS  # noqa: E402
from workflow import slurm  # noqa: E402

_deployment = getattr(workflow.deployment_settings, "deployment_method", ())
if DeploymentMethod.CONDA in _deployment and not (which("conda") or which("mamba")):
    raise WorkflowError(
        "--use-conda needs conda >= 24.7.1 on PATH, and there is none: install it (README, "
        "'Snakemake with --use-conda': Miniforge in two commands), or leave --use-conda out "
        "(`make setup` gives the same pinned packages in .venv)"
    )

with open(Path(workflow.basedir) / "params.yaml") as _fh:
    if yaml.safe_load(_fh) != config:
        raise WorkflowError(
            "the Snakemake config differs from params.yaml, but every stage command reads "
            "params.yaml (as DVC does): write your overrides into params.yaml (or a copy of "
            "the repository) instead of passing --config/--configfile"
        )
try:
    if workflow.is_main_process:
        JOBS = plan.check_and_write(validate(config))
    else:  # a cluster job's own Snakemake: the main process checked and wrote the digests
        JOBS = plan.jobs(validate(config))
except ConfigError as exc:
    raise WorkflowError(str(exc))

#: Training jobs by (task, backbone, mode, seed), as the training rule's wildcards spell them.
TRAINING = {job.run: job for job in JOBS.values() if job.run}


#: Report tables by path (their HTML, which the report shows inline).
REPORT_TABLES = {path: name for name, path in plan.REPORT_TABLES.items()}


def table_entry(path):
    """A table the report shows, as a report entry with its caption (other files stay plain)."""
    name = REPORT_TABLES.get(path)
    if name is None:
        return path
    caption = f"../report/table_{name}.rst"
    return report(path, caption=caption, category="Tables", subcategory=name)


def figure_entry(path):
    """A figure as a report entry with its caption."""
    caption = f"../report/{Path(path).stem}.rst"
    return report(path, caption=caption, category="Figures")


#: How the report shows a stage's outputs (stage -> wrapper of one path; tables elsewhere).
REPORT = {"figures": figure_entry}


def inputs(job):
    """A job's inputs: its digest and its data, folders written by other jobs as files."""
    return plan.inputs(job, JOBS.values())


def outputs(paths, stage=None):
    """Outputs as Snakemake wants them: folders as directory(), report entries wrapped."""
    wrap = REPORT.get(stage, table_entry)
    return [directory(p) if plan.is_folder(p) else wrap(p) for p in paths]


def one_of(names):
    """Wildcard constraint matching exactly the given names (nothing when empty)."""
    return "|".join(re.escape(str(n)) for n in sorted(set(names))) or "(?!x)x"


def training_job(wildcards):
    """The plan's job of the run the training rule's wildcards name."""
    return TRAINING[
        (wildcards.task, wildcards.backbone, wildcards.mode, wildcards.seed)
    ]


def slurm_requests():
    """What each rule's jobs to be run ask of a node (one job per rule: the rule's
    resources and threads are the same for all its jobs)."""
    first = {}
    for job in workflow.dag.needrun_jobs():
        first.setdefault(job.rule.name, job)
    return [
        slurm.request(name, dict(job.resources.items()), job.threads)
        for name, job in sorted(first.items())
    ]


#: DVC's lock, held open by this run from its start to its end.
HELD = []
#: Outputs versioned in git: a failing job leaves them as they were (pipeline/dag/kept.py).
TRACKED = [path for job in JOBS.values() for path in job.tracked]


onstart:
    # One engine at a time on a tree (pipeline/dag/engine_lock.py): refuse while DVC runs here,
    # then hold DVC's lock until this run ends; link the versioned outputs aside (put back
    # when the run ends, if a failing job removed them). Submitting to SLURM: check every
    # request against the cluster first (workflow/slurm.py).
    if workflow.is_main_process:
        try:
            HELD.append(engine_lock.hold_for_snakemake(Path(workflow.basedir)))
        except engine_lock.EngineBusy as exc:
            raise WorkflowError(str(exc))
        kept.keep(TRACKED, Path(workflow.basedir))
    plugin = workflow.executor_plugin
    if (
        workflow.is_main_process
        and plugin is not None
        and plugin.cli_prefix == "slurm"
    ):
        settings = workflow.executor_settings
        try:
            slurm.check(
                slurm_requests(),
                settings.status_command,
                settings.init_seconds_before_status_checks,
            )
        except slurm.ClusterError as exc:
            raise WorkflowError(str(exc))


onsuccess:
    if workflow.is_main_process:
        kept.restore(Path(workflow.basedir))


onerror:
    # Snakemake removed the outputs of the jobs that failed: the versioned ones come back.
    if workflow.is_main_process:
        kept.restore(Path(workflow.basedir))
