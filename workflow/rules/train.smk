# Training: one rule for every run of every family (task, backbone, mode, seed). Its inputs
# and command come from the run's job in the plan, DVC's `<stage>@<item>`, which it prints.
_RUN = ("{task}", "{backbone}", "{mode}", "{seed}")


rule train:
    input:
        lambda wildcards: inputs(training_job(wildcards)),
    output:
        outputs([p for paths in plan.run_outputs(*_RUN).values() for p in paths]),
    log:
        plan.Stage("train", "train", run=_RUN).log,
    wildcard_constraints:
        task=one_of(run[0] for run in TRAINING),
        backbone=one_of(run[1] for run in TRAINING),
        mode=one_of(run[2] for run in TRAINING),
        seed=one_of(run[3] for run in TRAINING),
    conda:
        "../envs/pipeline.yaml"
    threads: config["train"]["cpu_threads"]
    params:
        job=lambda wildcards: training_job(wildcards).name,
        cmd=lambda wildcards: training_job(wildcards).cmd,
    message:
        "{params.job}"
    shell:
        "{params.cmd}"
