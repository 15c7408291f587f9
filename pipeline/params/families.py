"""The training families, described once: what each trains, from what, on which schedule, and
where it shows. The runs (:mod:`pipeline.params.runs`) and the plan's training stages
(:mod:`pipeline.dag.plan`) are both built from this table, and the report filters runs by its
attributes; a new family is an entry here, its section in the schema and params.yaml, and
whatever new behaviour it brings.

Transfer and ablation runs are not in the table: each is one stage over pairs or an (r, n)
grid of its own section, outside the main table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Name of the baseline every fine-tuned run of a task starts from.
BASELINE_MODE = "default"


@dataclass(frozen=True)
class Start:
    """The run a family's runs start from, of the same backbone and seed: the mode
    ``mode`` (or the one params.yaml names at the task's key ``mode_key``) of ``task``
    (None: the run's own task). An IQA run starting from a classification run keeps only
    its backbone (a new head)."""

    task: str | None = None
    mode: str = BASELINE_MODE
    mode_key: str | None = None

    def mode_in(self, params: Mapping[str, Any], task: str) -> str:
        """The mode started from, for ``task``'s runs under ``params``."""
        return lookup_task(params, task, self.mode_key) if self.mode_key else self.mode


@dataclass(frozen=True)
class Family:
    """One family of the main table.

    ``section``: where a task's modes of it sit under the task in params.yaml (dotted).
    ``schedule``: task -> the ``train.<name>`` schedule its runs train with (the tasks that
    have the family). ``start``: task -> the run its runs start from (None: from scratch, or
    from the backbone's published weights). ``backbones``: the task's key listing the
    backbones it trains. ``epochs``: a task key every mode's epochs come from (None: the
    mode's own, else the schedule's). ``reads``: further task keys its runs read.
    ``learned``: it holds learned modes (their runs read ``r``, ``n``, ``resizer`` and the
    task's ``model_size``). ``gated``: its stage waits for the task's data probe (families
    whose runs start without another run of the task). ``examples``: the figures show its
    trained resizers' outputs. ``resizer_probe``: its runs that change the resolution inside
    the model are in the resizer probe. ``note``: task -> dvc.yaml's comment on its stage.
    """

    name: str
    section: str
    schedule: Mapping[str, str]
    start: Mapping[str, Start | None]
    backbones: str = "backbones"
    epochs: str | None = None
    reads: tuple[str, ...] = ()
    learned: bool = False
    gated: bool = False
    examples: bool = False
    resizer_probe: bool = True
    note: Mapping[str, str] = ()  # type: ignore[assignment]

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks that have this family."""
        return tuple(self.schedule)


DEFAULT = Start()

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("baseline", "baselines",
           schedule={"classification": "scratch", "iqa": "iqa", "attenuated": "scratch"},
           start={"classification": None, "iqa": Start(task="classification"),
                  "attenuated": None},
           gated=True,
           note={"classification": "fixed resizers, trained from scratch",
                 "iqa": "fixed resizers, from the ImageNet default (NIMA)",
                 "attenuated": "the second regime's fixed resizers, trained from scratch"}),
    Family("fixed", "fixed",
           schedule={"classification": "finetune", "iqa": "finetune", "attenuated": "finetune"},
           start={"classification": DEFAULT, "iqa": DEFAULT, "attenuated": DEFAULT},
           resizer_probe=False,
           note={"classification": "fixed resizers fine-tuned from the default (equal-epoch "
                                   "controls)"}),
    Family("learned", "learned",
           schedule={"classification": "finetune", "iqa": "finetune", "attenuated": "finetune"},
           start={"classification": DEFAULT, "iqa": DEFAULT, "attenuated": DEFAULT},
           learned=True, examples=True,
           note={"classification": "learned resizers (r, n) fine-tuned jointly with the "
                                   "default's backbone"}),
    Family("joint", "joint",
           schedule={"classification": "scratch"}, start={"classification": None},
           learned=True, gated=True,
           note={"classification": "the positive control, learned resizers with a backbone "
                                   "from scratch"}),
    Family("warm", "warm.modes",
           schedule={"classification": "finetune"},
           start={"classification": Start(mode_key="warm.from")},
           backbones="warm.backbones", epochs="warm.epochs",
           reads=("warm.from", "warm.epochs"), learned=True, examples=True,
           note={"classification": "the paper's protocol from the backbone of baseline "
                                   "warm.from, beside its equal-epoch controls"}),
)}


#: The families whose trained resizers the figures show examples of.
EXAMPLES = tuple(f.name for f in FAMILIES.values() if f.examples)
#: The families with learned modes.
LEARNED = tuple(f.name for f in FAMILIES.values() if f.learned)
#: The families whose in-model resizing runs the resizer probe reads.
RESIZER_PROBE = tuple(f.name for f in FAMILIES.values() if f.resizer_probe)


def lookup_task(params: Mapping[str, Any], task: str, dotted: str) -> Any:
    """``params[task]`` at a dotted key (a section the task does not have: empty)."""
    node = params[task]
    for part in dotted.split("."):
        node = node.get(part, {})
    return node


def families_of(task: str) -> list[Family]:
    """The main-table families ``task`` has, in table order."""
    return [f for f in FAMILIES.values() if task in f.tasks]
