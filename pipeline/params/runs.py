"""Every training run the configuration asks for, and where each one keeps its files.

A run is one (task, backbone, mode, seed). Tasks are ``classification`` (ImageNet layout) and
``iqa`` (AVA layout). The main table's runs come from the family table
(:mod:`pipeline.params.families`: what each family trains, from what, on which schedule); two
more families have sections of their own:

- ``transfer``: a learned resizer trained with a source backbone, fine-tuned jointly with the
  target backbone's ``default`` (mode ``from_<source>``).
- ``ablation``: the learned resizer for each (r, n) of the grid (mode ``r<r>_n<n>``).

Every run of one seed starts from runs of the same seed, so seeds are independent replicas.
A run's ``lr`` is the one it trains with: its schedule's (``train.<schedule>``, or the
backbone's ``train.overrides``), stated for ``train.reference_batch``, scaled linearly to
``loader.batch_size``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.errors import ConfigError
from pipeline.params.families import BASELINE_MODE, FAMILIES, Family, families_of, lookup_task

#: Task -> its kind (what the model outputs, its loss and metrics: pipeline.training.tasks).
#: ``attenuated`` is classification on the embedded benchmark's second regime
#: (``synthetic.attenuated``), whose fine cue the default's resize attenuates but keeps.
TASK_KIND = {"classification": "classification", "iqa": "iqa", "attenuated": "classification"}
TASKS = tuple(TASK_KIND)
#: The classification tasks' benchmark regimes, as the classification table names them: where
#: the fine cue lies against the model size's Nyquist frequency.
REGIMES = {"classification": "removed", "attenuated": "attenuated"}
#: The tasks with transfer pairs and an ablation grid of their own (sections in params.yaml).
GRID_TASKS = ("classification", "iqa")
_KIND_METRICS = {"classification": {"top1_err": -1, "top5_err": -1},
                 "iqa": {"srcc_mean": 1, "plcc_mean": 1, "srcc_std": 1, "plcc_std": 1,
                         "accuracy": 1, "emd": -1}}
#: Metrics each task reports (tables, figures) with their direction: +1 higher is better.
TASK_METRICS = {task: _KIND_METRICS[kind] for task, kind in TASK_KIND.items()}
#: The metric logged per epoch and plotted against cost.
PRIMARY_METRIC = {task: {"classification": "top1_err", "iqa": "srcc_mean"}[kind]
                  for task, kind in TASK_KIND.items()}
#: The families of a task's main table (one row per backbone and mode), each with where its
#: modes sit under the task in params.yaml (pipeline.params.families).
SECTIONS = {family.name: family.section for family in FAMILIES.values()}
MAIN_FAMILIES = tuple(FAMILIES)
#: Every family: the main table's, then the transfer pairs and the ablation grid.
FAMILY_NAMES = (*MAIN_FAMILIES, "transfer", "ablation")

#: The paper's resizer (r residual blocks, n filters): a learned mode's resizer unless its
#: ``kind`` names another trainable one of the registry (e.g. muller).
LEARNED_KIND = "learned"
#: ``classification.weights`` values besides a path: random initialisation, timm's hub.
SCRATCH, TIMM = "scratch", "timm"
#: Files a downloaded hub snapshot folder holds its weights in, in the order looked for.
SNAPSHOT_FILES = ("model.safetensors", "pytorch_model.bin")
RUNS_DIR = Path("data/runs")
#: What a training run writes in its folder of RUNS_DIR: its checkpoint and per-epoch history.
CHECKPOINT, HISTORY = "model.pt", "history.csv"
METRICS_DIR = Path("results/metrics")
LIVE_DIR = Path("results/live")
#: Where each task's prepared manifests are (the stages' --manifests).
MANIFESTS = {"classification": "data/preresized/imagenet", "iqa": "data/prepared/ava",
             "attenuated": "data/prepared/attenuated"}


@dataclass(frozen=True)
class Ref:
    """Another run of the same seed: the one whose checkpoint a run starts from."""

    task: str
    backbone: str
    mode: str


@dataclass(frozen=True)
class ResizerSpec:
    """A run's resizer, whole, as :func:`pipeline.models.build_model` builds it: the
    registered ``name``, the ``output_size`` it resizes to (the model size), and for a learned
    resizer its shape (``r`` residual blocks, ``n`` filters; ``None`` for other kinds) and
    ``knobs`` (params.yaml's ``resizer`` with the mode's overrides; empty for fixed ones)."""

    name: str
    output_size: int
    r: int | None = None
    n: int | None = None
    knobs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Run:
    """One training run.

    ``input_size`` is the resolution the data pipeline resizes to; ``model_size`` the one the
    backbone sees (equal for fixed resizers). ``init`` is the run whose weights the model
    starts from (``None``: from scratch; another task's: backbone only, new head);
    ``resizer_init`` the run whose learned resizer a transfer run starts from. ``r`` and ``n``
    are set for learned resizers. ``weights`` is where the backbone's published weights come
    from (``classification.weights``: ``timm`` or a path; None: scratch), set on every run of
    that backbone, as all of them see its inputs with the weights' statistics; the
    classification baselines load them (:attr:`loads_weights`).
    """

    task: str
    family: str
    backbone: str
    mode: str
    resizer: str
    input_size: int
    model_size: int
    epochs: int
    lr: float
    seed: int
    init: Ref | None = None
    resizer_init: Ref | None = None
    r: int | None = None
    n: int | None = None
    knobs: tuple[tuple[str, Any], ...] = ()
    weights: str | None = None

    @property
    def loads_weights(self) -> bool:
        """Whether the run's backbone starts from its published ``weights`` (the
        classification baselines of a backbone that has them) rather than from scratch or
        from another run."""
        return (self.weights is not None and self.task == "classification"
                and self.family == "baseline")

    @property
    def resizer_knobs(self) -> dict[str, Any]:
        """The learned resizer's knobs (``resizer`` in params.yaml, with the mode's
        overrides): zero_init, lr_mult, weight_decay, bound; empty for fixed resizers."""
        return dict(self.knobs)

    @property
    def resizer_spec(self) -> ResizerSpec:
        """What :func:`pipeline.models.build_model` builds the run's resizer from."""
        return ResizerSpec(self.resizer, self.model_size, self.r, self.n, self.knobs)

    @property
    def trains_resizer(self) -> bool:
        """Whether the resizer has parameters of its own to learn (a learned kind: the
        paper's, MULLER), as opposed to a fixed one."""
        return bool(self.knobs)

    @property
    def name(self) -> str:
        """Stable identifier used in logs and messages."""
        return f"{self.task}/{self.backbone}/{self.mode}/seed{self.seed}"

    @property
    def coordinates(self) -> tuple[str, str, str, int]:
        """(task, backbone, mode, seed): what :func:`run_path` and the plan key runs by."""
        return self.task, self.backbone, self.mode, self.seed

    @property
    def dir(self) -> Path:
        """Run directory (model.pt, history.csv)."""
        return RUNS_DIR / run_path(*self.coordinates)

    @property
    def metrics_path(self) -> Path:
        """Final metrics JSON."""
        return METRICS_DIR / f"{run_path(*self.coordinates)}.json"

    @property
    def live_file(self) -> Path:
        """Per-epoch metrics, rewritten every epoch (what `dvc plots show` draws)."""
        return LIVE_DIR / f"{run_path(*self.coordinates)}.csv"


def run_path(task: str, backbone: str, mode: str, seed: int | str) -> str:
    """``task/backbone/mode/seed<s>``: where one run's files live under the runs, metrics,
    live and log folders (the only place this layout is spelled; the plan fills it with
    DVC's ``${item.*}`` placeholders or Snakemake's wildcards as well as with values)."""
    return f"{task}/{backbone}/{mode}/seed{seed}"


def run_dir(task: str, backbone: str, mode: str, seed: int | str) -> Path:
    """Directory of one run's checkpoint and history."""
    return RUNS_DIR / run_path(task, backbone, mode, seed)


def checkpoint_of(ref: Ref, seed: int | str) -> Path:
    """The checkpoint a run of ``seed`` starts from when it names ``ref``."""
    return run_dir(ref.task, ref.backbone, ref.mode, seed) / CHECKPOINT


def ablation_mode(r: int, n: int) -> str:
    """Mode name of one ablation cell."""
    return f"r{r}_n{n}"


def transfer_mode(source: str) -> str:
    """Mode name of a run whose resizer was trained with ``source``."""
    return f"from_{source}"


def scaled_lr(params: Mapping[str, Any], lr: float) -> float:
    """``lr`` (stated for ``train.reference_batch``) at ``loader.batch_size``: the linear
    scaling rule."""
    return lr * params["loader"]["batch_size"] / params["train"]["reference_batch"]


def schedule(params: Mapping[str, Any], backbone: str, name: str) -> dict[str, Any]:
    """``train.<name>`` (scratch, finetune, iqa or pretrained) with the backbone's
    overrides, its lr scaled to the batch size."""
    train = params["train"]
    merged = {**train[name], **train["overrides"].get(backbone, {}).get(name, {})}
    return {**merged, "lr": scaled_lr(params, merged["lr"])}


def resizer_knobs(params: Mapping[str, Any], spec: Mapping[str, Any] | None = None
                  ) -> tuple[tuple[str, Any], ...]:
    """The top-level ``resizer`` knobs with a learned mode's own overrides."""
    knobs = {**params["resizer"], **(spec or {}).get("resizer", {})}
    return tuple(sorted(knobs.items()))


def family_modes(params: Mapping[str, Any], task: str) -> dict[str, dict[str, Any]]:
    """Family -> {mode: spec} of one task's main-table families, in params.yaml's order
    (a section the task does not have: empty)."""
    return {family: lookup_task(params, task, section) for family, section in SECTIONS.items()}


def is_fixed(spec: Mapping[str, Any]) -> bool:
    """Whether a mode's spec names a fixed resizer (``resizer: <name>``) rather than a
    learned one (``kind``, and ``resizer:`` knobs)."""
    return isinstance(spec.get("resizer"), str)


def _mode_run(params: Mapping[str, Any], family: Family, task: str, backbone: str, mode: str,
              spec: Mapping[str, Any], seed: int) -> Run:
    """One mode's run of a main-table family: its family's schedule, start and epochs; a
    fixed resizer at the mode's sizes, or a learned one (the paper's with ``r``, ``n``, or
    the trainable kind the mode names) from the mode's input size to the task's model size."""
    plan = schedule(params, backbone, family.schedule[task])
    start = family.start[task]
    init = None if start is None else Ref(start.task or task, backbone,
                                          start.mode_in(params, task))
    epochs = (lookup_task(params, task, family.epochs) if family.epochs
              else spec.get("epochs", plan["epochs"]))
    if is_fixed(spec):
        return Run(task, family.name, backbone, mode, spec["resizer"], spec["input_size"],
                   spec.get("model_size", spec["input_size"]), epochs, plan["lr"], seed, init)
    kind = spec.get("kind", LEARNED_KIND)
    shape = dict(r=params["r"], n=params["n"]) if kind == LEARNED_KIND else {}
    return Run(task, family.name, backbone, mode, kind, spec["input_size"],
               params[task]["model_size"], epochs, plan["lr"], seed, init, **shape,
               knobs=resizer_knobs(params, spec))


def _task_runs(params: Mapping[str, Any], task: str, backbone: str, seed: int) -> list[Run]:
    """The main-table runs of one task, backbone and seed: every family of the task that
    trains this backbone, every mode of it."""
    return [_mode_run(params, family, task, backbone, mode, spec, seed)
            for family in families_of(task)
            if backbone in lookup_task(params, task, family.backbones)
            for mode, spec in lookup_task(params, task, family.section).items()]


def transfer_runs(params: Mapping[str, Any], seed: int) -> list[Run]:
    """Each pair's target fine-tuned with the source's learned resizer, for each task."""
    spec = params["transfer"]
    return [Run(task, "transfer", pair["target"], transfer_mode(pair["source"]), "learned",
                spec["input_size"], params[task]["model_size"], spec["epochs"],
                scaled_lr(params, spec["lr"]), seed, Ref(task, pair["target"], BASELINE_MODE),
                Ref(task, pair["source"], spec["mode"]), r=params["r"], n=params["n"],
                knobs=resizer_knobs(params))
            for task in GRID_TASKS for pair in spec[task]]


def ablation_runs(params: Mapping[str, Any], seed: int) -> list[Run]:
    """One learned run per (r, n) of the grid, per task and backbone, for the seeds in
    ``ablation.seeds`` (none for other seeds)."""
    spec = params["ablation"]
    if seed not in spec["seeds"]:
        return []
    return [Run(task, "ablation", backbone, ablation_mode(r, n), "learned", spec["input_size"],
                params[task]["model_size"], schedule(params, backbone, "finetune")["epochs"],
                schedule(params, backbone, "finetune")["lr"], seed,
                Ref(task, backbone, BASELINE_MODE), r=r, n=n, knobs=resizer_knobs(params))
            for task in GRID_TASKS for backbone in spec[task] for r in spec["r"]
            for n in spec["n"]]


def all_runs(params: Mapping[str, Any]) -> list[Run]:
    """Every run, in configuration order: per seed, classification, IQA, transfer, ablation."""
    runs: list[Run] = []
    for seed in params["seeds"]:
        for task in TASKS:
            for backbone in params[task]["backbones"]:
                runs += _task_runs(params, task, backbone, seed)
        runs += transfer_runs(params, seed) + ablation_runs(params, seed)
    return [with_weights(params, run) for run in runs]


def published_weights(params: Mapping[str, Any], backbone: str) -> str | None:
    """Where ``backbone``'s published weights come from (``classification.weights``:
    ``timm`` or a path); None for ``scratch`` or a backbone not listed."""
    source = params["classification"]["weights"].get(backbone, SCRATCH)
    return None if source == SCRATCH else str(source)


def weights_file(source: str) -> Path:
    """The file a path-valued ``classification.weights`` entry names (a folder: the
    snapshot file it holds)."""
    path = Path(source)
    if path.is_dir():
        found = [path / name for name in SNAPSHOT_FILES if (path / name).is_file()]
        return found[0] if found else path / SNAPSHOT_FILES[0]
    return path


def with_weights(params: Mapping[str, Any], run: Run) -> Run:
    """``run`` with its backbone's published weights; a classification baseline that loads
    them trains ``train.pretrained`` (0 epochs: evaluated as published)."""
    source = published_weights(params, run.backbone)
    if source is None:
        return run
    run = dataclasses.replace(run, weights=source)
    if run.loads_weights:
        plan = schedule(params, run.backbone, "pretrained")
        run = dataclasses.replace(run, epochs=plan["epochs"], lr=plan["lr"])
    return run


def runs_of(params: Mapping[str, Any], task: str, family: str | None = None) -> list[Run]:
    """The runs of one task (and family)."""
    return [r for r in all_runs(params)
            if r.task == task and (family is None or r.family == family)]


def get_run(params: Mapping[str, Any], task: str, backbone: str, mode: str, seed: int) -> Run:
    """The configured run with these coordinates; ConfigError naming the choices otherwise."""
    runs = all_runs(params)
    for run in runs:
        if (run.task, run.backbone, run.mode, run.seed) == (task, backbone, mode, seed):
            return run
    choices = sorted({f"{r.task}/{r.backbone}/{r.mode}" for r in runs})
    raise ConfigError(f"no run {task}/{backbone}/{mode} with seed {seed} in params.yaml "
                      f"(seeds: {list(params['seeds'])}); configured runs: {', '.join(choices)}")


def check_runs(params: Mapping[str, Any]) -> list[str]:
    """Problem lines for run definitions the schema cannot check."""
    problems = []
    for task in TASKS:
        names = [mode for modes in family_modes(params, task).values() for mode in modes]
        clashes = sorted({m for m in names if names.count(m) > 1})
        if clashes:
            problems.append(f"{task}: mode name(s) {clashes} used twice; names must be unique "
                            f"across baselines, fixed, learned, joint and warm.modes")
        problems += warm_problems(params, task)
    stray = sorted(set(params["classification"]["weights"])
                   - set(params["classification"]["backbones"]))
    if stray:
        problems.append(f"classification.weights names {stray}, which are not in "
                        f"classification.backbones; allowed: "
                        f"{params['classification']['backbones']}")
    problems += [f"{task}.weights {sorted(params[task]['weights'])}: published weights are "
                 f"set per backbone in classification.weights; remove {task}.weights"
                 for task in TASKS if task != "classification" and params[task].get("weights")]
    problems += [f"{task}.{family.section} {sorted(lookup_task(params, task, family.section))}: "
                 f"the {family.name} family is {' and '.join(family.tasks)} only; remove "
                 f"{task}.{family.section.split('.')[0]}"
                 for task in TASKS for family in FAMILIES.values()
                 if task not in family.tasks and lookup_task(params, task, family.section)]
    every_backbone = {b for task in TASKS for b in params[task]["backbones"]}
    stray = sorted(set(params["train"]["overrides"]) - every_backbone)
    if stray:
        problems.append(f"train.overrides names {stray}, which no task trains; allowed: "
                        f"{sorted(every_backbone)}")
    missing = [b for b in params["iqa"]["backbones"]
               if b not in params["classification"]["backbones"]]
    if missing:
        problems.append(f"iqa.backbones {missing} are not in classification.backbones; an IQA "
                        f"model starts from the backbone's ImageNet (classification) default, "
                        f"so add them there")
    spec = params["transfer"]
    for task in GRID_TASKS:
        for i, pair in enumerate(spec[task]):
            where = f"transfer.{task}[{i}]"
            if pair["source"] == pair["target"]:
                problems.append(f"{where}: source and target are both {pair['source']!r}; a "
                                f"transfer needs two different backbones")
            absent = [pair[k] for k in ("source", "target") if pair[k] not in params[task]["backbones"]]
            if absent:
                problems.append(f"{where}: {absent} not in {task}.backbones (the transfer "
                                f"starts from their {task} runs); add them there")
        if spec[task] and spec["mode"] not in params[task]["learned"]:
            problems.append(f"transfer.mode = {spec['mode']!r} is not a mode of {task}.learned "
                            f"({', '.join(params[task]['learned']) or 'none'})")
        absent = [b for b in params["ablation"][task] if b not in params[task]["backbones"]]
        if absent:
            problems.append(f"ablation.{task}: {absent} not in {task}.backbones (an ablation "
                            f"run starts from the backbone's {task} default)")
    problems += start_problems(params) + size_problems(params)
    if params["figures"]["seed"] not in params["seeds"]:
        problems.append(f"figures.seed = {params['figures']['seed']} is not in seeds "
                        f"{list(params['seeds'])} (the figures show that seed's runs); choose "
                        f"among seeds")
    configured = {f"{r.backbone}/{r.mode}" for r in runs_of(
        {**params, "seeds": params["seeds"][:1]}, "classification") if r.family in MAIN_FAMILIES}
    for name in params.get("bench", {}).get("loop", {}).get("runs", []):
        if name not in configured:
            problems.append(f"bench.loop.runs names {name!r}, not a classification run of the "
                            f"main table ({', '.join(sorted(configured))}); name runs as "
                            f"backbone/mode")
    unknown = [s for s in params["ablation"]["seeds"] if s not in params["seeds"]]
    if unknown:
        problems.append(f"ablation.seeds {unknown} are not in seeds {list(params['seeds'])} (an "
                        f"ablation run of seed s starts from the default run of seed s); "
                        f"choose among seeds")
    return problems


def start_problems(params: Mapping[str, Any]) -> list[str]:
    """A line per family with modes whose runs would start from a mode that is not a
    baseline of the task they start from (the family table's ``start``)."""
    problems = []
    for task in TASKS:
        for family in families_of(task):
            start = family.start[task]
            if start is None or not lookup_task(params, task, family.section):
                continue
            source, mode = start.task or task, start.mode_in(params, task)
            if mode in params[source]["baselines"]:
                continue
            where = (f"{task}.{start.mode_key} = {mode!r}" if start.mode_key else
                     f"{task}.{family.section} starts from {mode!r}, which")
            problems.append(f"{where} is not a baseline of {source}; choose among "
                            f"{', '.join(params[source]['baselines'])}")
    return problems


def warm_problems(params: Mapping[str, Any], task: str) -> list[str]:
    """Problem lines of a task's ``warm`` section: it must start from one of the task's
    baselines, and every mode trains ``warm.epochs`` (no mode sets its own)."""
    warm = params[task].get("warm")
    if not warm or task != "classification":  # elsewhere check_runs refuses it
        return []
    problems = []
    stray = [b for b in warm["backbones"] if b not in params[task]["backbones"]]
    if stray:
        problems.append(f"{task}.warm.backbones {stray} are not in {task}.backbones (a warm "
                        f"run starts from the backbone's {warm['from']} run); add them there")
    own = sorted(mode for mode, spec in warm["modes"].items() if "epochs" in spec)
    if own:
        problems.append(f"{task}.warm.modes {own} set epochs; every warm mode trains "
                        f"{task}.warm.epochs (the equal-epoch control), so remove them")
    return problems


#: Where a family's input size is set, by family ({task}, {mode} filled in).
INPUT_SIZE_KEY = {**{family: f"{{task}}.{section}.{{mode}}.input_size"
                     for family, section in SECTIONS.items()},
                  "transfer": "transfer.input_size", "ablation": "ablation.input_size"}


def size_problems(params: Mapping[str, Any]) -> list[str]:
    """A line per mode whose backbone would see more pixels than the loader gives it: a
    resizer maps input_size to model_size, down or to the same size (the paper's 224 -> 224),
    never up."""
    problems, seen = [], set()
    for run in all_runs({**params, "seeds": params["seeds"][:1]}):
        key = INPUT_SIZE_KEY[run.family].format(task=run.task, mode=run.mode)
        if run.model_size <= run.input_size or key in seen:
            continue
        seen.add(key)
        # a fixed resizer's model_size is its mode's; a learned one's, the task's
        where = f"{run.task}.model_size" if run.trains_resizer else \
            key.replace(".input_size", ".model_size")
        problems.append(f"{where} = {run.model_size} exceeds {key} = {run.input_size}: the "
                        f"resizer maps input_size to model_size and never enlarges; set "
                        f"model_size <= input_size (or input_size >= {run.model_size})")
    table = params["resizer_params"]
    if table["output_size"] > table["input_size"]:
        problems.append(f"resizer_params.output_size = {table['output_size']} exceeds "
                        f"resizer_params.input_size = {table['input_size']}: a resizer never "
                        f"enlarges")
    return problems
