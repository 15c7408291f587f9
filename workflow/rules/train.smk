# Training: the baseline from scratch, then fixed and learned resizers from its checkpoint.


rule train_baseline:
    input:
        manifests="data/preresized/imagenet",
        code=CODE["train"],
    output:
        model="data/runs/classification/{backbone}/{mode}/model.pt",
        history="data/runs/classification/{backbone}/{mode}/history.csv",
        metrics="results/metrics/classification/{backbone}/{mode}.json",
    log:
        "logs/train/{backbone}/{mode}.log",
    wildcard_constraints:
        backbone=one_of(BACKBONES),
        mode=one_of(CLS["baselines"]),
    conda:
        "../envs/pipeline.yaml"
    threads: config["train"]["cpu_threads"]
    params:
        tracked=tracked(
            "seed",
            "loader",
            "train.cpu_threads",
            "train.sgd",
            "train.scratch",
            "classification.baselines.{mode}",
        ),
        out=run_dir,
    shell:
        "python -m pipeline train --backbone {wildcards.backbone} --mode {wildcards.mode}"
        " --manifests {input.manifests} --out {params.out} --metrics {output.metrics}"
        " --log {log}"


rule train_fixed:
    input:
        init="data/runs/classification/{backbone}/default/model.pt",
        manifests="data/preresized/imagenet",
        code=CODE["train"],
    output:
        model="data/runs/classification/{backbone}/{mode}/model.pt",
        history="data/runs/classification/{backbone}/{mode}/history.csv",
        metrics="results/metrics/classification/{backbone}/{mode}.json",
    log:
        "logs/train/{backbone}/{mode}.log",
    wildcard_constraints:
        backbone=one_of(BACKBONES),
        mode=one_of(CLS["fixed"]),
    conda:
        "../envs/pipeline.yaml"
    threads: config["train"]["cpu_threads"]
    params:
        tracked=tracked(
            "seed",
            "loader",
            "train.cpu_threads",
            "train.sgd",
            "train.finetune",
            "classification.fixed.{mode}",
        ),
        out=run_dir,
    shell:
        "python -m pipeline train --backbone {wildcards.backbone} --mode {wildcards.mode}"
        " --manifests {input.manifests} --init {input.init} --out {params.out}"
        " --metrics {output.metrics} --log {log}"


rule train_learned:
    input:
        init="data/runs/classification/{backbone}/default/model.pt",
        manifests="data/preresized/imagenet",
        code=CODE["train"],
    output:
        model="data/runs/classification/{backbone}/{mode}/model.pt",
        history="data/runs/classification/{backbone}/{mode}/history.csv",
        metrics="results/metrics/classification/{backbone}/{mode}.json",
    log:
        "logs/train/{backbone}/{mode}.log",
    wildcard_constraints:
        backbone=one_of(BACKBONES),
        mode=one_of(CLS["learned"]),
    conda:
        "../envs/pipeline.yaml"
    threads: config["train"]["cpu_threads"]
    params:
        tracked=tracked(
            "r",
            "n",
            "seed",
            "loader",
            "train.cpu_threads",
            "train.sgd",
            "train.finetune",
            "classification.model_size",
            "classification.learned.{mode}",
        ),
        out=run_dir,
    shell:
        "python -m pipeline train --backbone {wildcards.backbone} --mode {wildcards.mode}"
        " --manifests {input.manifests} --init {input.init} --out {params.out}"
        " --metrics {output.metrics} --log {log}"
