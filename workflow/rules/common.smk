# Configuration, validation and helpers shared by every rule file.
# params.yaml is validated here, at parse time, before any job runs: the same schema
# (workflow/schemas/params.schema.yaml) and semantic checks as every `python -m pipeline` stage.
import os
import re
import sys
from pathlib import Path

import yaml
from snakemake.utils import validate

sys.path.insert(0, workflow.basedir)
from pipeline.config import ConfigError, check_semantics, lookup  # noqa: E402
from pipeline.runs import MANIFESTS, TASKS, all_runs  # noqa: E402

validate(config, "../schemas/params.schema.yaml")
try:
    check_semantics(config)
except ConfigError as exc:
    raise WorkflowError(str(exc))

with open(Path(workflow.basedir) / "params.yaml") as _fh:
    if yaml.safe_load(_fh) != config:
        raise WorkflowError(
            "the Snakemake config differs from params.yaml, but every stage command reads "
            "params.yaml (as DVC does): write your overrides into params.yaml (or a copy of "
            "the repository) instead of passing --config/--configfile"
        )


def tracked(*keys):
    """Params a rule reads, by dotted key ('{mode}' filled from the wildcards), so a change
    reruns exactly the jobs whose DVC stages list the same keys."""

    def values(wildcards):
        resolved = [key.format(**wildcards) for key in keys]
        return {key: lookup(config, key) for key in resolved}

    return values


def one_of(names):
    """Wildcard constraint matching exactly the given names (nothing when empty)."""
    return "|".join(re.escape(n) for n in names) or "(?!x)x"


# Each stage's code: its import closure inside pipeline/ (tests/test_dag.py checks these
# lists against the imports and against dvc.yaml).
CORE = [
    "pipeline/__init__.py",
    "pipeline/__main__.py",
    "pipeline/cli.py",
    "pipeline/config.py",
    "pipeline/errors.py",
    "pipeline/io.py",
    "pipeline/runs.py",
    "pipeline/stages/__init__.py",
]
MODELS = [
    "pipeline/models/__init__.py",
    "pipeline/models/band_energy.py",
    "pipeline/models/bninception.py",
    "pipeline/models/cost.py",
    "pipeline/models/resizer.py",
    "pipeline/models/tiny.py",
]
CODE = {
    "synth-imagenet": CORE
    + [
        "pipeline/data/__init__.py",
        "pipeline/data/synth_imagenet.py",
        "pipeline/stages/synth_imagenet.py",
    ],
    "prepare-imagenet": CORE
    + [
        "pipeline/data/__init__.py",
        "pipeline/data/archives.py",
        "pipeline/data/checks.py",
        "pipeline/data/imagenet.py",
        "pipeline/stages/prepare_imagenet.py",
    ],
    "preresize": CORE
    + [
        "pipeline/data/__init__.py",
        "pipeline/data/checks.py",
        "pipeline/data/preresize.py",
        "pipeline/stages/preresize.py",
    ],
    "synth-ava": CORE
    + [
        "pipeline/data/__init__.py",
        "pipeline/data/synth_ava.py",
        "pipeline/stages/synth_ava.py",
    ],
    "prepare-ava": CORE
    + [
        "pipeline/data/__init__.py",
        "pipeline/data/ava.py",
        "pipeline/data/checks.py",
        "pipeline/stages/prepare_ava.py",
    ],
    "probe": CORE
    + [
        "pipeline/data/__init__.py",
        "pipeline/data/synth_imagenet.py",
        "pipeline/loaders/__init__.py",
        "pipeline/loaders/common.py",
        "pipeline/loaders/dali_loader.py",
        "pipeline/loaders/torch_loader.py",
        "pipeline/loaders/transforms.py",
        "pipeline/probe.py",
        "pipeline/stages/probe.py",
        "pipeline/noise.py",
        "pipeline/tables.py",
    ],
    "resizer-params": CORE
    + MODELS
    + [
        "pipeline/resizer_params.py",
        "pipeline/stages/resizer_params.py",
        "pipeline/noise.py",
        "pipeline/tables.py",
    ],
    "train": CORE
    + [
        "pipeline/checkpoint.py",
        "pipeline/device.py",
        "pipeline/diagnostics.py",
        "pipeline/distributed.py",
        "pipeline/evaluate.py",
        "pipeline/experiment.py",
        "pipeline/iqa.py",
        "pipeline/live.py",
        "pipeline/loaders/__init__.py",
        "pipeline/loaders/common.py",
        "pipeline/loaders/dali_loader.py",
        "pipeline/loaders/torch_loader.py",
        "pipeline/loaders/transforms.py",
        "pipeline/losses.py",
        "pipeline/noise.py",
        "pipeline/models/__init__.py",
        "pipeline/models/band_energy.py",
        "pipeline/models/bninception.py",
        "pipeline/models/cost.py",
        "pipeline/models/resizer.py",
        "pipeline/models/tiny.py",
        "pipeline/resume.py",
        "pipeline/stages/train.py",
        "pipeline/tasks.py",
        "pipeline/train.py",
    ],
    "tables": CORE
    + [
        "pipeline/stages/tables.py",
        "pipeline/noise.py",
        "pipeline/tables.py",
    ],
    "figures": CORE
    + [
        "pipeline/checkpoint.py",
        "pipeline/device.py",
        "pipeline/diagnostics.py",
        "pipeline/distributed.py",
        "pipeline/evaluate.py",
        "pipeline/examples.py",
        "pipeline/experiment.py",
        "pipeline/figures.py",
        "pipeline/iqa.py",
        "pipeline/loaders/__init__.py",
        "pipeline/loaders/common.py",
        "pipeline/loaders/dali_loader.py",
        "pipeline/loaders/torch_loader.py",
        "pipeline/loaders/transforms.py",
        "pipeline/losses.py",
        "pipeline/noise.py",
        "pipeline/models/__init__.py",
        "pipeline/models/band_energy.py",
        "pipeline/models/bninception.py",
        "pipeline/models/cost.py",
        "pipeline/models/resizer.py",
        "pipeline/models/tiny.py",
        "pipeline/resume.py",
        "pipeline/stages/figures.py",
        "pipeline/tasks.py",
        "pipeline/train.py",
        "pipeline/trained.py",
    ],
    "resizer-probe": CORE
    + [
        "pipeline/checkpoint.py",
        "pipeline/data/__init__.py",
        "pipeline/data/synth_imagenet.py",
        "pipeline/device.py",
        "pipeline/diagnostics.py",
        "pipeline/distributed.py",
        "pipeline/evaluate.py",
        "pipeline/experiment.py",
        "pipeline/iqa.py",
        "pipeline/loaders/__init__.py",
        "pipeline/loaders/common.py",
        "pipeline/loaders/dali_loader.py",
        "pipeline/loaders/torch_loader.py",
        "pipeline/loaders/transforms.py",
        "pipeline/losses.py",
        "pipeline/models/__init__.py",
        "pipeline/models/band_energy.py",
        "pipeline/models/bninception.py",
        "pipeline/models/cost.py",
        "pipeline/models/resizer.py",
        "pipeline/models/tiny.py",
        "pipeline/noise.py",
        "pipeline/probe.py",
        "pipeline/resume.py",
        "pipeline/stages/probe.py",
        "pipeline/stages/resizer_probe.py",
        "pipeline/tables.py",
        "pipeline/tasks.py",
        "pipeline/train.py",
        "pipeline/trained.py",
    ],
    "bench-loaders": CORE
    + [
        "pipeline/bench.py",
        "pipeline/data/__init__.py",
        "pipeline/data/synth_imagenet.py",
        "pipeline/loaders/__init__.py",
        "pipeline/loaders/common.py",
        "pipeline/loaders/dali_loader.py",
        "pipeline/loaders/torch_loader.py",
        "pipeline/loaders/transforms.py",
        "pipeline/stages/bench_loaders.py",
    ],
}

RUNS = all_runs(config)


# Training rules (train.smk).
COMMON = [
    "loader",
    "train.cpu_threads",
    "train.sgd",
    "train.reference_batch",
    "train.warmup_epochs",
    "train.grad_clip",
    "train.overrides",
]


def run_outputs(task, backbone="{backbone}", mode="{mode}"):
    path = f"{task}/{backbone}/{mode}/seed{{seed}}"
    return dict(
        model=f"data/runs/{path}/model.pt",
        history=f"data/runs/{path}/history.csv",
        metrics=f"results/metrics/{path}.json",
        live_metrics=f"results/live/{path}/metrics.json",
        live_plots=directory(f"results/live/{path}/plots/metrics"),
    )


def train_shell(
    task,
    backbone="{wildcards.backbone}",
    mode="{wildcards.mode}",
    init=False,
    resizer_init=False,
):
    return (
        f"python -m pipeline train --task {task} --backbone {backbone} --mode {mode}"
        " --seed {wildcards.seed} --manifests {input.manifests}"
        + (" --init {input.init}" if init else "")
        + (" --resizer-init {input.resizer_init}" if resizer_init else "")
        + " --out {params.out} --metrics {output.metrics} --live {params.live} --log {log}"
    )


def default_of(task):
    return f"data/runs/{task}/{{backbone}}/default/seed{{seed}}/model.pt"


def source_checkpoint(task):
    """The checkpoint a transfer's resizer starts from: the source's transfer.mode run."""
    mode = config["transfer"]["mode"]
    return f"data/runs/{task}/{{source}}/{mode}/seed{{seed}}/model.pt"


# Tables and figures (tables.smk).
TABLES = ["classification", "iqa", "transfer", "ablation", "diagnostics"]
FIGURES = [
    "cost_classification",
    "cost_iqa",
    "ablation_classification",
    "ablation_iqa",
    "examples",
    "training_curves",
    "resizer_response",
]


def table_outputs():
    return {
        f"{name}_{ext}": report(
            f"results/tables/{name}.{ext}",
            caption=f"../report/table_{name}.rst",
            category="Tables",
            subcategory=name,
        )
        for name in TABLES
        for ext in ("csv", "md")
    }
