"""Before Snakemake submits anything to SLURM: does every rule's request fit the cluster, and
can the executor plugin see its jobs finish?

Without this, a request the cluster cannot meet (``--gpus=1`` where no node has a GPU, more
memory or cores than any node has, a partition that does not exist) is refused by sbatch for
every job, and the profile's ``restart-times`` resubmits it in the same second; a status query
by ``sacct`` on a cluster without accounting never sees a job end, and Snakemake waits
forever. Both are found here, from ``sinfo`` and ``scontrol show config``, and reported as one
message naming the rule, the resource and the override.

The checks are pure functions of the requests and of what the cluster reports
(:func:`problems`, :func:`status_problem`); :func:`check` queries the cluster and is what the
workflow's ``onstart`` handler calls (workflow/rules/common.smk).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: The plugin's first status check comes this many seconds after a submission when the
#: profile does not say (snakemake-executor-plugin-slurm 2.x).
PLUGIN_INIT_SECONDS = 40
#: Where the project's profiles are (for the messages).
CPU_PROFILE = "workflow/profiles/slurm-cpu"


class ClusterError(Exception):
    """The cluster cannot run the workflow as the profile asks; the message says what to
    change."""


@dataclass(frozen=True)
class NodeKind:
    """One kind of node of a partition, as ``sinfo`` groups them."""

    partition: str
    cpus: int
    memory_mb: int
    gpus: int


@dataclass(frozen=True)
class Request:
    """What one rule's jobs ask of one node."""

    rule: str
    partition: str | None
    cpus: int
    memory_mb: int | None
    gpus: int


def gpus_in_gres(gres: str) -> int:
    """GPUs per node in a gres string (``gpu:4``, ``gpu:a100:2(S:0-1)``, ``(null)``)."""
    total = 0
    for item in gres.split(","):
        fields = re.sub(r"\(.*?\)", "", item).split(":")
        if fields[0] == "gpu":
            count = fields[-1] if len(fields) > 1 else "1"
            total += int(count) if count.isdigit() else 1
    return total


def parse_sinfo(text: str) -> list[NodeKind]:
    """Node kinds from ``sinfo -h -o '%R|%c|%m|%G'``."""
    kinds = []
    for line in text.splitlines():
        if not line.strip():
            continue
        partition, cpus, memory, gres = line.strip().split("|")
        kinds.append(NodeKind(partition.rstrip("*"), int(cpus.rstrip("+")),
                              int(memory.rstrip("+")), gpus_in_gres(gres)))
    return kinds


def parse_config(text: str) -> dict[str, str]:
    """``scontrol show config`` as a dict (``Key = value`` lines)."""
    config = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            config[key.strip()] = value.strip()
    return config


def as_int(value: Any) -> int | None:
    """An integer resource value (None when unset or not a plain number, e.g. a callable
    Snakemake evaluates per job)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def request(rule: str, resources: Mapping[str, Any], threads: int) -> Request:
    """What a rule's jobs ask of a node, read the way the slurm plugin writes its sbatch flags:
    ``cpus_per_task`` (else ``cpus_per_gpu`` × GPUs on a GPU job, else the rule's threads),
    ``mem_mb`` (or ``mem_mb_per_cpu`` × CPUs), ``gpu`` (or a ``gpu`` gres)."""
    gpus = as_int(resources.get("gpu")) or gpus_in_gres(str(resources.get("gres") or ""))
    cpus = as_int(resources.get("cpus_per_task"))
    if not cpus and gpus:
        per_gpu = as_int(resources.get("cpus_per_gpu"))
        cpus = per_gpu * gpus if per_gpu and per_gpu > 0 else None
    cpus = cpus if cpus and cpus > 0 else max(1, threads)
    memory = as_int(resources.get("mem_mb"))
    per_cpu = as_int(resources.get("mem_mb_per_cpu"))
    if per_cpu:
        memory = per_cpu * cpus
    partition = resources.get("slurm_partition")
    return Request(rule, str(partition) if partition else None, cpus, memory, gpus)


def override(rule: str, resource: str, value: Any) -> str:
    """How to change one resource of one rule."""
    return (f"set {resource}: {value} under set-resources: {rule}: in the profile (or pass "
            f"--set-resources {rule}:{resource}={value})")


def problems(requests: Iterable[Request], kinds: list[NodeKind],
             default_partition: str | None) -> list[str]:
    """Every request no node of its partition can meet, as a message naming the rule, the
    resource and how to override it."""
    by_partition: dict[str, list[NodeKind]] = {}
    for kind in kinds:
        by_partition.setdefault(kind.partition, []).append(kind)
    found = []
    for req in requests:
        name = req.partition or default_partition or ""
        nodes = by_partition.get(name)
        if not nodes:
            known = sorted(by_partition)
            found.append(f"rule '{req.rule}' asks for partition '{name}', which this cluster "
                         f"does not have (partitions: {', '.join(known) or 'none'}): "
                         f"{override(req.rule, 'slurm_partition', known[0] if known else 'NAME')}")
            continue
        gpus = max(n.gpus for n in nodes)
        cpus = max(n.cpus for n in nodes)
        memory = max(n.memory_mb for n in nodes)
        if req.gpus > gpus:
            hint = (f"on a cluster without GPUs use --workflow-profile {CPU_PROFILE}, or "
                    f"{override(req.rule, 'gpu', 0)}" if gpus == 0 else
                    override(req.rule, "gpu", gpus))
            found.append(f"rule '{req.rule}' asks for {req.gpus} GPU(s) on a node, but the "
                         f"nodes of partition '{name}' have {gpus or 'no'} GPU(s): {hint}")
        if req.cpus > cpus:
            found.append(f"rule '{req.rule}' asks for {req.cpus} CPUs on a node, but the "
                         f"largest node of partition '{name}' has {cpus}: "
                         f"{override(req.rule, 'cpus_per_task', cpus)}")
        if req.memory_mb is not None and req.memory_mb > memory:
            found.append(f"rule '{req.rule}' asks for {req.memory_mb} MB of memory, but the "
                         f"largest node of partition '{name}' has {memory} MB: "
                         f"{override(req.rule, 'mem_mb', memory)}")
    return found


def seconds(value: str) -> int | None:
    """A duration from ``scontrol show config`` (``300 sec``, ``5 min``, ``1h``, ``300``)."""
    match = re.match(r"(\d+)\s*([a-z]*)", value.strip().lower())
    if not match:
        return None
    number, unit = int(match.group(1)), match.group(2)
    scale = {"": 1, "s": 1, "sec": 1, "secs": 1, "seconds": 1, "min": 60, "m": 60, "h": 3600,
             "hours": 3600}
    return number * scale[unit] if unit in scale else None


def status_problem(status_command: str, init_seconds: int, config: Mapping[str, str],
                   sacct_installed: bool) -> str | None:
    """Why the plugin would never see a job end, or None when it will.

    With accounting disabled ``sacct`` reports nothing; the plugin uses ``sacct`` when told to,
    and also instead of ``squeue`` whenever ``MinJobAge`` (how long squeue keeps a finished
    job) is under three first-check intervals.
    """
    accounting = config.get("AccountingStorageType", "")
    if accounting != "accounting_storage/none" or not sacct_installed:
        return None
    min_age = seconds(config.get("MinJobAge", ""))
    if status_command == "sacct":
        return ("job states would be read with sacct, but this cluster's accounting is "
                "disabled (AccountingStorageType = accounting_storage/none), so no job would "
                "ever be seen to finish: pass --slurm-status-command squeue (the project's "
                "SLURM profiles set it)")
    if min_age is None or min_age < 3 * init_seconds:
        return (f"squeue forgets a finished job after MinJobAge = {min_age} s, under three "
                f"status intervals ({init_seconds} s each), so the slurm plugin would switch "
                f"to sacct, which this cluster without accounting cannot answer: lower "
                f"--slurm-init-seconds-before-status-checks below {(min_age or 0) // 3 or 1} or "
                f"raise MinJobAge in slurm.conf")
    return None


def run(*cmd: str) -> str:
    """A SLURM command's output; ClusterError when it fails (no controller, say)."""
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True,
                              timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        raise ClusterError(f"`{' '.join(cmd)}` failed ({str(detail).strip()}): is this a SLURM "
                           f"submit host, and is the controller up (`sinfo`)?") from None


def check(requests: Iterable[Request], status_command: str,
          init_seconds: int | None) -> None:
    """Query the cluster and raise ClusterError listing every problem found."""
    kinds = parse_sinfo(run("sinfo", "-h", "-o", "%R|%c|%m|%G"))
    default = next((line.split()[0].rstrip("*") for line in
                    run("sinfo", "-h", "-o", "%P").splitlines() if line.strip().endswith("*")),
                   None)
    found = problems(requests, kinds, default)
    status = status_problem(status_command, init_seconds or PLUGIN_INIT_SECONDS,
                            parse_config(run("scontrol", "show", "config")),
                            shutil.which("sacct") is not None)
    found += [status] if status else []
    if found:
        raise ClusterError(
            "this SLURM cluster cannot run the workflow as asked; nothing was submitted:\n  - "
            + "\n  - ".join(found) + "\n(--set-resources on the command line replaces all of "
            "the profile's set-resources: give every resource a rule needs, or edit a copy of "
            "the profile)")
