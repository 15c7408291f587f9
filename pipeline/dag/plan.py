"""The plan: every stage of the DAG, described once.

Both engines follow from :data:`STAGES`. ``dvc.yaml`` is rendered from it (``make dvc.yaml``,
:mod:`pipeline.dag.dvcyaml`; a test fails when the committed file differs), keeping DVC's
``matrix:`` so that ``dvc exp run -S seeds=[0,1]`` adds runs without regenerating anything. The
Snakefile expands the same stages into jobs with :func:`jobs`, exactly as DVC expands a matrix
(a test compares the two engines' stages, commands, inputs and outputs).

What a job reads besides its data is in its *digest*, ``data/plan/<job>.json``: the hash of its
code (:mod:`pipeline.dag.codehash`) and the value of every params key it reads. The ``plan`` stage
(first in both engines: a DVC stage, a parse-time step in Snakemake) validates params.yaml whole
and rewrites only the digests whose content changed. Every job depends on its digest and on
nothing else of the code or the params, so a job reruns when its code or its params change, in
either engine, and a bad params.yaml stops the DAG before any stage removes an output.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.io import file_digest
from pipeline.dag.codehash import code_hash
from pipeline.params.config import (SYNTHETIC_ATTENUATED_DIR, SYNTHETIC_AVA_DIR,
                                    SYNTHETIC_IMAGENET_DIR, lookup)
from pipeline.params.families import Family, families_of
from pipeline.params.runs import (BASELINE_MODE, CHECKPOINT, HISTORY, LIVE_DIR, MANIFESTS,
                                  METRICS_DIR, REGIMES, RUNS_DIR, SCRATCH, TIMM, Ref, ablation_mode,
                                  checkpoint_of, run_path, transfer_mode, weights_file)
from pipeline.report.curves import CURVES
from pipeline.report.pages import PAGES

log = logging.getLogger(__name__)

PLAN_DIR = Path("data/plan")
PROBE = "results/tables/probe.csv"
#: The IQA set's validity gate (stage probe-ava).
PROBE_AVA = "results/tables/probe_ava.csv"
#: The second regime's gate (stage probe-attenuated).
PROBE_ATTENUATED = "results/tables/probe_attenuated.csv"
#: Each task's data probe: the gate of the families that start without another run of the task.
PROBES = {"classification": PROBE, "iqa": PROBE_AVA, "attenuated": PROBE_ATTENUATED}
#: The loader benchmark's measurements (the tables stage renders them for the report).
BENCH = "results/bench/loaders.csv"
#: The loop benchmark's measurements: the project's epoch beside a bare PyTorch loop.
LOOP_BENCH = "results/bench/loop.csv"
#: The one DVC metrics file: numbers only, what `dvc exp show` and `dvc metrics diff` compare.
SUMMARY = "results/tables/summary.json"
TABLES = tuple(PAGES)
#: The conventions every table shares, written once by the tables stage.
TABLES_README = "results/tables/README.md"
#: Tables the Snakemake report shows inline (their HTML), by name; each has a caption,
#: workflow/report/table_<name>.rst.
REPORT_TABLES = {"probe": "results/tables/probe.html",
                 "probe_ava": "results/tables/probe_ava.html",
                 "probe_attenuated": "results/tables/probe_attenuated.html",
                 **{name: f"results/tables/{name}.html" for name in TABLES},
                 "resizer_probe": "results/tables/resizer_probe.html",
                 "resizer_params": "results/tables/resizer_params.html",
                 "loaders": "results/bench/loaders.html"}
FIGURES = ("cost_classification", "cost_iqa", "ablation_classification", "ablation_iqa",
           "examples", "training_curves", "resizer_response")
#: Params every training run reads, whatever its family.
TRAIN_PARAMS = ("loader", "train.cpu_threads", "train.sgd", "train.reference_batch",
                "train.warmup_epochs", "train.grad_clip", "train.overrides")
#: Params a learned resizer adds (the r x n ablation takes r and n from its matrix instead).
LEARNED_PARAMS = ("resizer", "r", "n")
ITEM = re.compile(r"\$\{\s*([\w.-]+)\s*\}")


@dataclass(frozen=True)
class Stage:
    """One stage; with a ``matrix`` (item name -> ``${params.key}``), a template whose strings
    use ``${item.<name>}`` as DVC's do. ``outs`` are cached by DVC; ``results`` (tables,
    figures, reports), ``metrics`` and ``plots`` are kept in git (``cache: false``). ``run``
    is (task, backbone, mode, seed) for a training stage."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    deps: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()
    results: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()
    matrix: tuple[tuple[str, str], ...] = ()
    run: tuple[str, str, str, str] | None = None
    note: str = ""

    @property
    def log(self) -> str:
        """The stage's log file (``--log-file``)."""
        return f"logs/train/{run_path(*self.run)}.log" if self.run else f"logs/{self.name}.log"

    @property
    def cmd(self) -> str:
        """The shell command both engines run."""
        return " ".join(["python -m pipeline", self.command, *self.args, "--log-file", self.log])

    @property
    def digest(self) -> str:
        """Path of the digest (code hash and params values) this stage depends on; a training
        stage's is named by its run, so stages that differ only in their matrix are alike."""
        return f"{PLAN_DIR}/{'runs/' + run_path(*self.run) if self.run else self.name}.json"

    @property
    def outputs(self) -> tuple[str, ...]:
        """Every output, cached or not."""
        return (*self.outs, *self.tracked)

    @property
    def tracked(self) -> tuple[str, ...]:
        """The outputs versioned in git, not cached by DVC."""
        return (*self.results, *self.metrics, *self.plots)


@dataclass(frozen=True)
class Job:
    """One expanded stage: DVC's ``stage@item`` (its ``name``), a Snakemake job."""

    name: str
    stage: Stage

    def __getattr__(self, attr: str) -> Any:
        """Everything else is the concrete stage's (``cmd``, ``deps``, ``digest`` ...)."""
        return getattr(self.stage, attr)


def _data_stages() -> list[Stage]:
    return [
        Stage("synth-imagenet", "synth-imagenet", ("--out", SYNTHETIC_IMAGENET_DIR),
              params=("seed", "synthetic.imagenet"), outs=(SYNTHETIC_IMAGENET_DIR,)),
        Stage("prepare-imagenet", "prepare-imagenet",
              ("--out", "data/prepared/imagenet", "--report", "results/data/imagenet_report.csv",
               "--summary", "results/data/imagenet_summary.json"),
              deps=("${data.imagenet.root}",), params=("data.imagenet", "data.check"),
              outs=("data/prepared/imagenet",),
              results=("results/data/imagenet_report.csv", "results/data/imagenet_summary.json")),
        Stage("preresize-imagenet", "preresize",
              ("--manifests", "data/prepared/imagenet", "--out", MANIFESTS["classification"]),
              deps=("data/prepared/imagenet",), params=("preresize", "loader.decoded_max_mb"),
              outs=(MANIFESTS["classification"],)),
        Stage("synth-ava", "synth-ava", ("--out", SYNTHETIC_AVA_DIR),
              params=("seed", "synthetic.ava"), outs=(SYNTHETIC_AVA_DIR,)),
        Stage("prepare-ava", "prepare-ava",
              ("--out", MANIFESTS["iqa"], "--report", "results/data/ava_report.csv",
               "--summary", "results/data/ava_summary.json"),
              deps=("${data.ava.root}",),
              params=("data.ava", "data.check", "loader.decoded_max_mb"),
              outs=(MANIFESTS["iqa"],),
              results=("results/data/ava_report.csv", "results/data/ava_summary.json")),
        Stage("probe", "probe",
              ("--manifests", MANIFESTS["classification"], "--out", "results/tables/probe"),
              deps=(MANIFESTS["classification"],),
              params=("seed", "probe", "loader", "data.imagenet.root",
                      "classification.baselines.default", "classification.learned",
                      "classification.joint", "classification.warm.modes"),
              results=(PROBE, "results/tables/probe.md", REPORT_TABLES["probe"]),
              note="The validity gate: is the fine cue unreadable at the model size and "
                   "readable at the resizers' input size?"),
        Stage("probe-ava", "probe-ava",
              ("--manifests", MANIFESTS["iqa"], "--out", "results/tables/probe_ava"),
              deps=(MANIFESTS["iqa"], "${data.ava.root}"),
              params=("seed", "probe", "loader", "data.ava.root", "iqa.baselines.default",
                      "iqa.learned", "iqa.joint"),
              results=(PROBE_AVA, "results/tables/probe_ava.md", REPORT_TABLES["probe_ava"]),
              note="The IQA set's gate: is its fine quality unreadable at the model size and "
                   "readable at the resizers' input size?"),
        Stage("synth-attenuated", "synth-imagenet",
              ("--variant", "attenuated", "--out", SYNTHETIC_ATTENUATED_DIR),
              params=("seed", "synthetic.imagenet", "synthetic.attenuated"),
              outs=(SYNTHETIC_ATTENUATED_DIR,),
              note="The benchmark's second regime: its fine cue attenuated at the model size, "
                   "not removed."),
        Stage("prepare-attenuated", "prepare-imagenet",
              ("--tree", SYNTHETIC_ATTENUATED_DIR, "--out", MANIFESTS["attenuated"],
               "--report", "results/data/attenuated_report.csv",
               "--summary", "results/data/attenuated_summary.json"),
              deps=(SYNTHETIC_ATTENUATED_DIR,), params=("data.check", "loader.decoded_max_mb"),
              outs=(MANIFESTS["attenuated"],),
              results=("results/data/attenuated_report.csv",
                       "results/data/attenuated_summary.json")),
        Stage("probe-attenuated", "probe",
              ("--task", "attenuated", "--manifests", MANIFESTS["attenuated"],
               "--out", "results/tables/probe_attenuated"),
              deps=(MANIFESTS["attenuated"],),
              params=("seed", "probe", "loader", "attenuated.baselines.default",
                      "attenuated.learned"),
              results=(PROBE_ATTENUATED, "results/tables/probe_attenuated.md",
                       REPORT_TABLES["probe_attenuated"]),
              note="The second regime's gate: is its fine cue readable but attenuated at the "
                   "model size, and readable at the resizers' input size?"),
        Stage("resizer-params", "resizer-params", ("--out", "results/tables/resizer_params"),
              params=("resizer_params",),
              results=("results/tables/resizer_params.csv", "results/tables/resizer_params.md",
                       REPORT_TABLES["resizer_params"])),
    ]


def run_outputs(task: str, backbone: str, mode: str, seed: str) -> dict[str, tuple[str, ...]]:
    """What a training run writes: checkpoint and history (``outs``), its final metrics JSON
    (``results``: kept in git, read by the tables; not a DVC metrics file, as it holds the
    run's description too) and its per-epoch plots (``plots``)."""
    path = run_path(task, backbone, mode, seed)
    return {"outs": (str(RUNS_DIR / path / CHECKPOINT), str(RUNS_DIR / path / HISTORY)),
            "results": (f"{METRICS_DIR / path}.json",),
            "plots": (f"{LIVE_DIR / path}.csv",)}


def is_folder(path: str) -> bool:
    """Whether an output is a folder: in this plan, a path without a file extension."""
    return not Path(path).suffix


def train_stage(name: str, task: str, matrix: dict[str, str], params: tuple[str, ...],
                backbone: str = "${item.backbone}", mode: str = "${item.mode}",
                init: str | None = None, resizer_init: str | None = None,
                deps: tuple[str, ...] = (), note: str = "") -> Stage:
    """A training stage: one run per matrix item. ``init``/``resizer_init``: the checkpoint
    the model (or only its resizer) starts from."""
    seed = "${item.seed}"
    starts = [("--init", init), ("--resizer-init", resizer_init)]
    args = ("--task", task, "--backbone", backbone, "--mode", mode, "--seed", seed,
            "--manifests", MANIFESTS[task],
            *(word for flag, ckpt in starts if ckpt for word in (flag, ckpt)))
    return Stage(name, "train", args,
                 deps=(*(c for _, c in starts if c), MANIFESTS[task], *deps),
                 params=(*TRAIN_PARAMS, *params), **run_outputs(task, backbone, mode, seed),
                 matrix=tuple(matrix.items()), run=(task, backbone, mode, seed), note=note)


def _checkpoint(task: str, backbone: str, mode: str) -> str:
    return str(checkpoint_of(Ref(task, backbone, mode), "${item.seed}"))


def _start_checkpoint(family: Family, task: str) -> str | None:
    """The checkpoint a family's stage starts its runs from (its table entry's ``start``)."""
    start = family.start[task]
    if start is None:
        return None
    mode = f"${{{task}.{start.mode_key}}}" if start.mode_key else start.mode
    return _checkpoint(start.task or task, "${item.backbone}", mode)


def _main_training(task: str, prefix: str) -> list[Stage]:
    """A stage per main-table family of the task (pipeline.params.families): its backbones,
    modes and seeds as the matrix, its schedule, start, probe and the keys it reads."""
    learned = (*LEARNED_PARAMS, f"{task}.model_size")
    return [train_stage(f"{prefix}-{family.name}", task,
                        {"backbone": f"${{{task}.{family.backbones}}}",
                         "mode": f"${{{task}.{family.section}}}", "seed": "${seeds}"},
                        (f"train.{family.schedule[task]}", *(learned if family.learned else ()),
                         *(f"{task}.{key}" for key in family.reads),
                         f"{task}.{family.section}.${{item.mode}}"),
                        init=_start_checkpoint(family, task),
                        deps=(PROBES[task],) if family.gated else (),
                        note=f"{task}: {family.note[task]}." if task in family.note else "")
            for family in families_of(task)]


def _transfer(task: str) -> Stage:
    source, target = "${item.pair.source}", "${item.pair.target}"
    return train_stage(f"transfer-{task}", task,
                       {"pair": f"${{transfer.{task}}}", "seed": "${seeds}"},
                       (*LEARNED_PARAMS, "transfer", f"{task}.model_size"),
                       backbone=target, mode=transfer_mode(source),
                       init=_checkpoint(task, target, BASELINE_MODE),
                       resizer_init=_checkpoint(task, source, "${transfer.mode}"),
                       note="A source backbone's resizer, fine-tuned with the target's "
                            "default." if task == "classification" else "")


def _ablation(task: str) -> Stage:
    return train_stage(f"ablation-{task}", task,
                       {"backbone": f"${{ablation.{task}}}", "r": "${ablation.r}",
                        "n": "${ablation.n}", "seed": "${ablation.seeds}"},
                       ("resizer", "train.finetune", "ablation.input_size", f"{task}.model_size"),
                       mode=ablation_mode("${item.r}", "${item.n}"),  # type: ignore[arg-type]
                       init=_checkpoint(task, "${item.backbone}", BASELINE_MODE),
                       note="The r x n grid of learned resizers." if task == "classification"
                       else "")


def _training_stages() -> list[Stage]:
    return [*_main_training("classification", "train"), *_main_training("iqa", "iqa"),
            *_main_training("attenuated", "attenuated"),
            _transfer("classification"), _transfer("iqa"),
            _ablation("classification"), _ablation("iqa")]


def _report_stages() -> list[Stage]:
    return [
        Stage("bench-loaders", "bench-loaders", ("--out", BENCH),
              params=("seed", "synthetic.imagenet", "loader.train_scale", "loader.eval_crop",
                      "bench"),
              results=(BENCH,),
              note="Machine-dependent timings: kept in git, never expected byte-identical."),
        Stage("bench-loop", "bench-loop",
              ("--manifests", MANIFESTS["classification"], "--out", LOOP_BENCH),
              deps=(MANIFESTS["classification"],),
              # its runs' fields, learned resizers' knobs included
              params=("seeds", "bench.loop", "loader", "train", "classification",
                      *LEARNED_PARAMS),
              results=(LOOP_BENCH,),
              note="Machine-dependent timings: kept in git, never expected byte-identical."),
        Stage("tables", "tables",
              ("--metrics", str(METRICS_DIR), "--out", "results/tables", "--bench", BENCH),
              deps=(str(METRICS_DIR), BENCH),
              params=("seeds", "classification", "iqa", "attenuated", "transfer", "ablation",
                      "train.scratch.epochs", "train.finetune.epochs", "train.iqa.epochs"),
              results=(*(f"results/tables/{name}.{ext}" for name in TABLES
                         for ext in ("csv", "md", "html")), TABLES_README,
                       REPORT_TABLES["loaders"]),
              metrics=(SUMMARY,)),
        Stage("resizer-probe", "resizer-probe",
              ("--runs", str(RUNS_DIR), "--out", "results/tables/resizer_probe"),
              # all runs: a regime without backbones writes no folder of its own
              deps=(str(RUNS_DIR), *(MANIFESTS[task] for task in REGIMES)),
              params=("seed", "seeds", "probe", "loader", "r", "n", "resizer", *REGIMES,
                      "data.imagenet.root"),
              results=("results/tables/resizer_probe.csv", "results/tables/resizer_probe.md",
                       REPORT_TABLES["resizer_probe"]),
              note="Is the fine cue still in what each trained resizer hands to its backbone?"),
        Stage("figures", "figures",
              ("--tables", "results/tables", "--runs", str(RUNS_DIR), "--out", "results/figures"),
              deps=(*(f"results/tables/{n}.csv" for n in ("classification", "iqa", "ablation")),
                    str(RUNS_DIR), *MANIFESTS.values()),
              params=("seeds", "loader", "r", "n", "figures", "classification", "iqa",
                      "ablation"),
              results=tuple(f"results/figures/{name}.png" for name in FIGURES)),
    ]


#: Every stage but ``plan``, in DAG order.
STAGES: tuple[Stage, ...] = (*_data_stages(), *_training_stages(), *_report_stages())


#: The fields of a stage that may hold ``${...}`` templates.
TEMPLATED = ("args", "deps", "params", "outs", "results", "metrics", "plots", "run")


def _fill(text: str, item: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """``text`` with ``${item.x}`` from the matrix item and ``${a.b}`` from params, as DVC
    interpolates them."""
    def value(match: re.Match) -> str:
        key = match.group(1)
        return str(lookup(item, key[5:]) if key.startswith("item.") else lookup(params, key))
    return ITEM.sub(value, text)


def filled(stage: Stage, item: Mapping[str, Any], params: Mapping[str, Any]) -> Stage:
    """One concrete stage: every template filled, no matrix."""
    fields = {name: tuple(_fill(text, item, params) for text in getattr(stage, name))
              for name in TEMPLATED if getattr(stage, name) is not None}
    return dataclasses.replace(stage, matrix=(), **fields)


def expand(stage: Stage, params: Mapping[str, Any]) -> list[Job]:
    """The jobs of one stage, named as DVC names a matrix's items (``stage@a-b-c``; an item
    that is not a scalar by its axis and index, ``pair0``). A matrix axis iterates a list's
    items or a mapping's keys."""
    axes = [(axis, list(lookup(params, ref[2:-1]))) for axis, ref in stage.matrix]
    jobs = []
    for combo in itertools.product(*(list(enumerate(values)) for _, values in axes)):
        item = {axis: value for (axis, _), (_, value) in zip(axes, combo)}
        parts = [str(v) if isinstance(v, (str, int, float)) else f"{axis}{i}"
                 for (axis, _), (i, v) in zip(axes, combo)]
        name = stage.name + ("@" + "-".join(parts) if parts else "")
        jobs.append(Job(name, filled(stage, item, params)))
    return jobs


def jobs(params: Mapping[str, Any]) -> dict[str, Job]:
    """Every job the configuration asks for, by name, in DAG order."""
    return {job.name: job for stage in STAGES for job in expand(stage, params)}


def inputs(job: Job, every: Iterable[Job]) -> list[str]:
    """A job's inputs as files (what Snakemake needs): its digest, then its deps, a folder
    that other jobs write into replaced by the files they write there."""
    produced = [out for other in every for out in other.outputs]
    files = []
    for dep in job.deps:
        inside = [out for out in produced if out.startswith(dep.rstrip("/") + "/")]
        files += inside if dep not in produced and inside else [dep]
    return [job.digest, *files]


def _overlap(dep: str, out: str) -> bool:
    """Whether output ``out`` is dependency ``dep``, lies in it or holds it."""
    dep, out = dep.rstrip("/"), out.rstrip("/")
    return dep == out or out.startswith(dep + "/") or dep.startswith(out + "/")


def upstream(job: Job, every: Iterable[Job]) -> list[Job]:
    """The jobs whose outputs ``job`` needs, directly or through others, in DAG order."""
    every = list(every)
    wanted, needed = set(job.deps), set()
    for other in reversed(every[:every.index(job)]):  # producers come before their users
        if any(_overlap(dep, out) for dep in wanted for out in other.outputs):
            needed.add(other.name)
            wanted |= set(other.deps)
    return [other for other in every if other.name in needed]


def curve_plots(params: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """DVC's top-level plot definitions: per task and :data:`CURVES` entry, every training
    run's per-epoch CSV overlaid (legend: the file, which names the run). ``epochs`` is
    DVC's ``linear`` template with whole-epoch ticks and legend names never cut
    (.dvc/plots/epochs.json)."""
    runs = [job.run for job in jobs(params).values() if job.run]
    plots = []
    for task, curves in CURVES.items():
        files = [f"{LIVE_DIR / run_path(*run)}.csv" for run in runs if run[0] == task]
        for field, label in curves:
            plots.append((f"{task}: {label}", {
                "template": "epochs", "x": "epoch", "x_label": "epoch", "y_label": label,
                "y": {file: field for file in files}}))
    return plots


def command_modules(command: str) -> list[str]:
    """The modules ``python -m pipeline <command>`` runs."""
    return ["pipeline.__main__", f"pipeline.stages.{command.replace('-', '_')}"]


def published(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Backbone -> what its runs start from when it has published weights: the source
    (``classification.weights``), the file's MD5 for a path (a file replaced in place
    reruns them under Snakemake, which plans at every start; DVC's ``plan`` stage reruns
    when params.yaml or the code changes) and the baselines' ``train.pretrained``."""
    found = {}
    for backbone, source in params["classification"]["weights"].items():
        if source == SCRATCH:
            continue
        found[backbone] = {"source": source, "pretrained": params["train"]["pretrained"],
                           **({} if source == TIMM else
                              {"md5": file_digest(weights_file(source))})}
    return found


def digests(all_jobs: Iterable[Job], params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Digest path -> content for every job: its code hash, its params' values and, for a
    training job of a backbone with published weights, where they come from
    (:func:`published`)."""
    hashes: dict[str, str] = {}
    weights = published(params)
    out = {}
    for job in all_jobs:
        if job.command not in hashes:
            hashes[job.command] = code_hash(command_modules(job.command))
        out[job.digest] = {"job": job.name, "command": job.cmd, "code": hashes[job.command],
                           "params": {key: lookup(params, key) for key in job.params}}
        if job.run and job.run[1] in weights:
            out[job.digest]["weights"] = weights[job.run[1]]
    return out


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    if old.get("code") != new["code"]:
        return "its code changed"
    keys = [k for k in new["params"] if old.get("params", {}).get(k) != new["params"][k]]
    return f"params changed: {', '.join(keys)}" if keys else "its command changed"


def write_digests(all_jobs: Iterable[Job], params: Mapping[str, Any],
                  root: Path = PLAN_DIR) -> list[str]:
    """Write each job's digest where its content changed (other files keep their time, so
    Snakemake's time stamps agree with DVC's hashes) and remove those of jobs no longer
    configured; return a line per digest written."""
    wanted = {Path(path).relative_to(PLAN_DIR).as_posix(): content
              for path, content in digests(all_jobs, params).items()}
    root.mkdir(parents=True, exist_ok=True)
    for stale in sorted({p.relative_to(root).as_posix() for p in root.rglob("*.json")}
                        - set(wanted)):
        (root / stale).unlink()
    written = []
    for name, content in wanted.items():
        path, text = root / name, json.dumps(content, indent=1, sort_keys=True) + "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        old = path.read_text() if path.is_file() else None
        if old != text:
            reason = _changes(json.loads(old), content) if old else "new"
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(text)
            tmp.replace(path)
            written.append(f"{content['job']}: {reason}")
    return written


def known_classes(params: Mapping[str, Any]) -> int | None:
    """The ImageNet set's class count where params.yaml says it (the embedded set's, or the
    official 1000 with ``expect_official``); None otherwise (the train stage checks it)."""
    imagenet = params["data"]["imagenet"]
    if imagenet["root"] == SYNTHETIC_IMAGENET_DIR:
        return params["synthetic"]["imagenet"]["classes"]
    return 1000 if imagenet["expect_official"] else None


def check_and_write(params: Mapping[str, Any], source: str = "params.yaml",
                    root: Path = PLAN_DIR) -> dict[str, Job]:
    """What the ``plan`` step does in both engines, on params already validated against the
    schema: check the backbone names (timm's registry), expand the jobs, write the digests
    that changed (logging why each changed), and return the jobs."""
    from pipeline.models import check_models  # imports torch and timm
    from pipeline.models.weights import overrides

    check_models(dict(params), source, weights=True, num_classes=known_classes(params))
    for backbone in params["classification"]["backbones"]:
        for line in overrides(params, backbone):
            log.warning("published weights: %s", line)
    every = jobs(params)
    written = write_digests(every.values(), params, root)
    for line in written:
        log.info("digest %s", line)
    log.info("%d jobs planned, %d digests rewritten in %s", len(every), len(written), root)
    return every
