# Every stage of the plan that is not a training run: one rule each, named as in dvc.yaml
# (with `_` for `-`), with the plan's command, inputs and outputs.
#: Threads a rule takes beyond one: the benchmarks time the loaders' workers and the training
#: loop and take two cores at least, so that on a 2-core machine no job runs beside them
#: (Snakemake scales a job's threads down to --cores).
BENCH_THREADS = max(2, config["bench"]["workers"], config["train"]["cpu_threads"])
THREADS = {"bench-loaders": BENCH_THREADS, "bench-loop": BENCH_THREADS}

for _stage in plan.STAGES:
    if _stage.matrix:
        continue

    rule:
        name:
            _stage.name.replace("-", "_")
        input:
            inputs(JOBS[_stage.name]),
        output:
            outputs(JOBS[_stage.name].outputs, _stage.name),
        log:
            _stage.log,
        conda:
            "../envs/pipeline.yaml"
        threads: THREADS.get(_stage.name, 1)
        params:
            # through params: `shell:` and `message:` are evaluated when a job runs, after the
            # loop has moved on
            job=_stage.name,
            cmd=JOBS[_stage.name].cmd,
        message:
            "{params.job}"
        shell:
            "{params.cmd}"
