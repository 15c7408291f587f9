"""Render ``dvc.yaml`` from the plan: ``python -m pipeline.dag.dvcyaml [dvc.yaml]`` (``make dvc.yaml``).

Hand-formatted rather than dumped, so that the file reads like a hand-written one: a comment
per stage, DVC's ``matrix:`` and ``${item.*}`` templates, folded commands. The stages are the
same for any params.yaml; the top-level ``plots:`` list the runs params.yaml asks for (DVC
cannot loop there), so ``make dvc.yaml`` follows a change of backbones, modes or seeds, and the
``plan`` stage warns while dvc.yaml lags behind params.yaml.
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections import Counter
from pathlib import Path

from pipeline.dag.plan import PLAN_DIR, STAGES, Stage, curve_plots
from pipeline.params.config import load_params

HEADER = """\
# Generated from pipeline/dag/plan.py (`make dvc.yaml`; edit the plan, not this file). Each stage depends
# on its digest in data/plan/ (its code hash and params values), written by the `plan` stage.
stages:
  plan:
    cmd: python -m pipeline plan --out {plan} --log-file logs/plan.log
    deps: [pipeline, workflow/schemas]
    params: [params.yaml: ]
    outs:
    - {plan}: {{cache: false, persist: true}}
"""
WIDTH = 110


def _list(key: str, items: tuple[str, ...], flags: str = "") -> list[str]:
    """A YAML list: on one line where it fits and needs no quotes, else one item a line."""
    if not items:
        return []
    flow = f"{key}: [{', '.join(items)}]"
    if not flags and len(flow) <= WIDTH - 6 and not any(set(i) & set("{}[],:") for i in items):
        return [flow]
    return [f"{key}:", *(f"- {item}{flags}" for item in items)]


def _folded(cmd: str) -> list[str]:
    """The command on one line, or in lines of whole ``--flag value`` groups."""
    if len(cmd) <= WIDTH - 9:
        return [f"cmd: {cmd}"]
    lines: list[str] = []
    for group in re.split(r" (?=--)", cmd):
        if lines and len(lines[-1]) + 1 + len(group) <= WIDTH - 6:
            lines[-1] += " " + group
        else:
            lines.append(group)
    return ["cmd: >-", *(f"  {line}" for line in lines)]


#: Outputs versioned in git (results/): DVC keeps them while their stage runs (`persist`), so a
#: stage that fails leaves the committed files as they were; the stages write each of them
#: atomically when they succeed (pipeline.core.io), so none is ever half-written.
TRACKED = "{cache: false, persist: true}"


def body(stage: Stage) -> list[str]:
    """What a stage runs, reads and writes (unindented YAML lines)."""
    return [*_folded(stage.cmd), *_list("deps", (stage.digest, *stage.deps)),
            *_list("outs", (*stage.outs, *(f"{r}: {TRACKED}"
                                           for r in (*stage.results, *stage.plots)))),
            *_list("metrics", stage.metrics, f": {TRACKED}")]


def stage_lines(stage: Stage, shared: dict[tuple[str, ...], str],
                counts: Counter[tuple[str, ...]]) -> list[str]:
    """The YAML lines of one stage. A stage whose body an earlier one has is written as that
    one's with its own matrix (``<<: *name``, a YAML merge key); ``shared`` maps each body
    to the stage that wrote it first (updated here), ``counts`` how many stages have it."""
    note = textwrap.wrap(stage.note, WIDTH - 4, initial_indent="  # ", subsequent_indent="  # ")
    matrix = ", ".join(f'{axis}: "{ref}"' for axis, ref in stage.matrix)
    head = [*note, f"  {stage.name}:", *([f"    matrix: {{{matrix}}}"] if matrix else [])]
    lines = body(stage)
    key = tuple(lines)
    if key in shared:
        return [*head, f"    <<: *{shared[key]}"]
    shared[key] = stage.name
    if counts[key] > 1:
        return [*head, f"    <<: &{stage.name}", *(f"      {line}" for line in lines)]
    return [*head, *(f"    {line}" for line in lines)]


def plot_lines(params: dict) -> list[str]:
    """The top-level ``plots:`` section: per-epoch curves, every run of a task on one plot."""
    lines = ["", "# Per-epoch curves of every run, overlaid (`dvc plots show`, `dvc plots diff`).",
             "plots:"]
    for name, spec in curve_plots(params):
        lines += [f'- "{name}":', f"    template: {spec['template']}", f"    x: {spec['x']}",
                  f"    x_label: {spec['x_label']}", f"    y_label: {spec['y_label']}", "    y:"]
        lines += [f"      {path}: {field}" for path, field in spec["y"].items()]
    return lines


def render(params: dict) -> str:
    """The whole dvc.yaml for ``params``."""
    shared: dict[tuple[str, ...], str] = {}
    counts = Counter(tuple(body(stage)) for stage in STAGES)
    text = "\n".join(line for stage in STAGES
                     for line in ["", *stage_lines(stage, shared, counts)])
    return HEADER.format(plan=PLAN_DIR) + text + "\n" + "\n".join(plot_lines(params)) + "\n"


def main(argv: list[str]) -> int:
    """Write dvc.yaml (or the path given) for params.yaml."""
    path = Path(argv[0] if argv else "dvc.yaml")
    text = render(load_params(Path("params.yaml")))
    path.write_text(text)
    print(f"wrote {path} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
