"""Training under contention: images/s of one training epoch on an idle machine and beside busy
processes, for the thread settings a run may use.

    python workflow/scripts/contention.py [--busy 8] [--out results/bench/contention.csv]

Not a DAG stage: it loads the machine on purpose (``--busy`` processes spinning in a Python
loop, started before and stopped after each loaded pass), so run it on an otherwise quiet
machine after ``make repro`` (it reads the embedded set's prepared manifests). Each case is one
process per pass, so that OpenMP reads its wait policy when it starts: ``threads`` intra-op
threads under GNU OpenMP's default policy (idle threads spin) or ``OMP_WAIT_POLICY=PASSIVE``.
The project trains each run on ``train.cpu_threads`` (1) thread, as many runs side by side as
there are cores. Rows: run, threads, policy, busy processes, images/s, CPU ms per image, and
the loaded pass's share of the idle one (a process that slows in proportion to its CPU share
beside N busy processes on C cores keeps about C / (N + 1) of its idle rate, at most 1).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

#: (run, threads, OMP_WAIT_POLICY or None for OpenMP's default).
CASES = [("resnet_tiny/default", 1, None), ("resnet_tiny/default", 2, None),
         ("resnet_tiny/default", 2, "PASSIVE"), ("test_byobnet/bilinear_hr", 1, None),
         ("test_byobnet/bilinear_hr", 2, None),
         ("test_byobnet/bilinear_hr", 2, "PASSIVE")]
MANIFESTS = ROOT / "data" / "preresized" / "imagenet"


def spin(stop: multiprocessing.Event) -> None:
    """A busy process: a Python loop until told to stop."""
    count = 0
    while not stop.is_set():
        for _ in range(100_000):
            count += 1


def one_epoch(name: str, threads: int, batches: int) -> dict[str, float]:
    """Images/s and CPU ms per image of the project's training loop on the first ``batches``
    batches of run ``name`` (classification, seed 0), after one warm-up pass (this process)."""
    import torch
    from torch import nn

    from pipeline.bench.loop import first_batches
    from pipeline.core.manifests import read_manifest
    from pipeline.loaders import build_loader
    from pipeline.loaders.decoded import read_decoded
    from pipeline.params.config import load_params
    from pipeline.params.runs import get_run
    from pipeline.training.device import select_accel
    from pipeline.training.loop import make_optimizer, train_one_epoch
    from pipeline.training.model import loader_spec, new_model
    from pipeline.training.runner import recipe_for

    torch.set_num_threads(threads)
    params = load_params(ROOT / "params.yaml")
    backbone, mode = name.split("/")
    run = get_run(params, "classification", backbone, mode, 0)
    frame = read_manifest(MANIFESTS, "train")
    decoded = read_decoded(MANIFESTS, "train", frame)
    accel = select_accel()
    model = accel.prepare(new_model(run, len(read_manifest(MANIFESTS, "classes"))))
    recipe = recipe_for(run, params["train"])
    optimizer = make_optimizer(model, recipe)
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)

    def epoch(seed: int) -> tuple[float, float, int]:
        spec = loader_spec(run, params["loader"], train=True, seed=seed)
        loader = first_batches(build_loader(params["loader"]["kind"], frame, spec, decoded),
                               batches)
        cpu, start = time.process_time(), time.perf_counter()
        images = train_one_epoch(model, loader, criterion, optimizer, accel,
                                 grad_clip=recipe.grad_clip)["images"]
        return time.perf_counter() - start, time.process_time() - cpu, images

    epoch(0)
    wall, cpu, images = epoch(1)
    return {"images_per_s": images / wall, "cpu_ms_per_image": 1000 * cpu / images}


def measure(name: str, threads: int, policy: str | None, batches: int) -> dict[str, float]:
    """:func:`one_epoch` in a fresh process with the case's OpenMP settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); "
            f"from workflow.scripts.contention import one_epoch; "
            f"print(json.dumps(one_epoch({name!r}, {threads}, {batches})))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", type=int, default=8, help="busy processes (default 8)")
    parser.add_argument("--batches", type=int, default=12, help="batches a pass (default 12)")
    parser.add_argument("--out", type=Path, default=ROOT / "results/bench/contention.csv")
    args = parser.parse_args(argv)
    import pandas as pd

    from pipeline.report.bench_table import cpu_model

    rows = []
    for name, threads, policy in CASES:
        idle = measure(name, threads, policy, args.batches)
        stop = multiprocessing.Event()
        busy = [multiprocessing.Process(target=spin, args=(stop,)) for _ in range(args.busy)]
        for proc in busy:
            proc.start()
        try:
            time.sleep(1.0)
            loaded = measure(name, threads, policy, args.batches)
        finally:
            stop.set()
            for proc in busy:
                proc.join()
        for busy_count, found in ((0, idle), (args.busy, loaded)):
            rows.append({"run": name, "threads": threads, "omp_wait_policy": policy or "default",
                         "busy_processes": busy_count,
                         "images_per_s": round(found["images_per_s"], 1),
                         "cpu_ms_per_image": round(found["cpu_ms_per_image"], 3),
                         "vs_idle": round(found["images_per_s"] / idle["images_per_s"], 3),
                         "cpus": os.cpu_count(), "cpu_model": cpu_model()})
            print(f"{name} threads {threads} {policy or 'default'} busy {busy_count}: "
                  f"{found['images_per_s']:.0f} images/s, {found['cpu_ms_per_image']:.2f} ms "
                  f"CPU/image", flush=True)
    frame = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
