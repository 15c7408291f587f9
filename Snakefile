# The DAG for Snakemake, read from the same plan as dvc.yaml (pipeline/dag/plan.py): same jobs,
# commands, inputs and outputs; tests/test_dag.py compares the two engines.
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/stages.smk"
include: "workflow/rules/train.smk"


rule all:
    default_target: True
    input:
        [path for job in JOBS.values() for path in job.outputs],


# Every training run and what it needs (data, probes): what `make repro` trains side by side
# before DVC runs the rest (pipeline/stages/repro.py).
rule training:
    input:
        [path for job in JOBS.values() if job.run for path in job.outputs],
