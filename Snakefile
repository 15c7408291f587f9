# The DAG for Snakemake. dvc.yaml holds the same stages for DVC: same commands, inputs (code
# included), params and outputs; tests/test_dag.py fails on any drift.
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/bench.smk"


rule all:
    default_target: True
    input:
        rules.tables.output,
        rules.figures.output,
        rules.resizer_params.output,
        rules.prepare_ava.output,
        rules.bench_loaders.output,
        rules.probe.output,
        rules.resizer_probe.output,
