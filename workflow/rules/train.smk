# Training: one job per run (task, backbone, mode, seed); the same stages as dvc.yaml's
# train-*/iqa-*/transfer-*/ablation-* (tests/test_dag.py keeps them identical).


rule train_baseline:
    input:
        manifests=MANIFESTS["classification"],
        probe="results/tables/probe.csv",
        code=CODE["train"],
    output:
        **run_outputs("classification"),
    log:
        "logs/train/classification/{backbone}/{mode}/seed{seed}.log",
    wildcard_constraints:
        backbone=one_of(config["classification"]["backbones"]),
        mode=one_of(config["classification"]["baselines"]),
        seed=one_of(map(str, config["seeds"])),
    conda:
        "../envs/pipeline.yaml"
    threads: config["train"]["cpu_threads"]
    params:
        tracked=tracked(*COMMON, "train.scratch", "classification.baselines.{mode}"),
        out=lambda wildcards, output: os.path.dirname(output.model),
        live=lambda wildcards, output: os.path.dirname(output.live_metrics),
    shell:
        train_shell("classification", init=False)


rule train_fixed:
    input:
        init=default_of("classification"),
        manifests=MANIFESTS["classification"],
        code=CODE["train"],
    output:
        **run_outputs("classification"),
    log:
        "logs/train/classification/{backbone}/{mode}/seed{seed}.log",
    wildcard_constraints:
        backbone=one_of(config["classification"]["backbones"]),
        mode=one_of(config["classification"]["fixed"]),
        seed=one_of(map(str, config["seeds"])),
    conda:
        "../envs/pipeline.yaml"
    threads: config["train"]["cpu_threads"]
    params:
        tracked=tracked(*COMMON, "train.finetune", "classification.fixed.{mode}"),
        out=lambda wildcards, output: os.path.dirname(output.model),
        live=lambda wildcards, output: os.path.dirname(output.live_metrics),
    shell:
        train_shell("classification", init=True)


rule train_learned:
    input:
        init=default_of("classification"),
        manifests=MANIFESTS["classification"],
        code=CODE["train"],
    output:
        **run_outputs("classification"),
    log:
        "logs/train/classification/{backbone}/{mode}/seed{seed}.log",
    wildcard_constraints:
        backbone=one_of(config["classification"]["backbones"]),
        mode=one_of(config["classification"]["learned"]),
        seed=one_of(map(str, config["seeds"])),
    conda:
        "../envs/pipeline.yaml"
    threads: config["train"]["cpu_threads"]
    params:
        tracked=tracked(
            "r",
            "n",
            "resizer",
            *COMMON,
            "train.finetune",
            "classification.model_size",
            "classification.learned.{mode}",
        ),
        out=lambda wildcards, output: os.path.dirname(output.model),
        live=lambda wildcards, output: os.path.dirname(output.live_metrics),
    shell:
        train_shell("classification", init=True)


rule train_joint:
    input:
        manifests=MANIFESTS["classification"],
        probe="results/tables/probe.csv",
        code=CODE["train"],
    output:
        **run_outputs("classification"),
    log:
        "logs/train/classification/{backbone}/{mode}/seed{seed}.log",
    wildcard_constraints:
        backbone=one_of(config["classification"]["backbones"]),
        mode=one_of(config["classification"]["joint"]),
        seed=one_of(map(str, config["seeds"])),
    conda:
        "../envs/pipeline.yaml"
    threads: config["train"]["cpu_threads"]
    params:
        tracked=tracked(
            "r",
            "n",
            "resizer",
            *COMMON,
            "train.scratch",
            "classification.model_size",
            "classification.joint.{mode}",
        ),
        out=lambda wildcards, output: os.path.dirname(output.model),
        live=lambda wildcards, output: os.path.dirname(output.live_metrics),
    shell:
        train_shell("classification", init=False)


rule iqa_baseline:
    input:
        init=default_of("classification"),
        manifests=MANIFESTS["iqa"],
        code=CODE["train"],
    output:
        **run_outputs("iqa"),
    log:
        "logs/train/iqa/{backbone}/{mode}/seed{seed}.log",
    wildcard_constraints:
        backbone=one_of(config["iqa"]["backbones"]),
        mode=one_of(config["iqa"]["baselines"]),
        seed=one_of(map(str, config["seeds"])),
    conda:
        "../envs/pipeline.yaml"
    threads: config["train"]["cpu_threads"]
    params:
        tracked=tracked(*COMMON, "train.iqa", "iqa.baselines.{mode}"),
        out=lambda wildcards, output: os.path.dirname(output.model),
        live=lambda wildcards, output: os.path.dirname(output.live_metrics),
    shell:
        train_shell("iqa", init=True)


rule iqa_fixed:
    input:
        init=default_of("iqa"),
        manifests=MANIFESTS["iqa"],
        code=CODE["train"],
    output:
        **run_outputs("iqa"),
    log:
        "logs/train/iqa/{backbone}/{mode}/seed{seed}.log",
    wildcard_constraints:
        backbone=one_of(config["iqa"]["backbones"]),
        mode=one_of(config["iqa"]["fixed"]),
        seed=one_of(map(str, config["seeds"])),
    conda:
        "../envs/pipeline.yaml"
    threads: config["train"]["cpu_threads"]
    params:
        tracked=tracked(*COMMON, "train.finetune", "iqa.fixed.{mode}"),
        out=lambda wildcards, output: os.path.dirname(output.model),
        live=lambda wildcards, output: os.path.dirname(output.live_metrics),
    shell:
        train_shell("iqa", init=True)


rule iqa_learned:
    input:
        init=default_of("iqa"),
        manifests=MANIFESTS["iqa"],
        code=CODE["train"],
    output:
        **run_outputs("iqa"),
    log:
        "logs/train/iqa/{backbone}/{mode}/seed{seed}.log",
    wildcard_constraints:
        backbone=one_of(config["iqa"]["backbones"]),
        mode=one_of(config["iqa"]["learned"]),
        seed=one_of(map(str, config["seeds"])),
    conda:
        "../envs/pipeline.yaml"
    threads: config["train"]["cpu_threads"]
    params:
        tracked=tracked(
            "r",
            "n",
            "resizer",
            *COMMON,
            "train.finetune",
            "iqa.model_size",
            "iqa.learned.{mode}",
        ),
        out=lambda wildcards, output: os.path.dirname(output.model),
        live=lambda wildcards, output: os.path.dirname(output.live_metrics),
    shell:
        train_shell("iqa", init=True)


rule transfer_classification:
    input:
        init="data/runs/classification/{target}/default/seed{seed}/model.pt",
        resizer_init=source_checkpoint("classification"),
        manifests=MANIFESTS["classification"],
        code=CODE["train"],
    output:
        **run_outputs("classification", "{target}", "from_{source}"),
    log:
        "logs/train/classification/{target}/from_{source}/seed{seed}.log",
    wildcard_constraints:
        target=one_of(p["target"] for p in config["transfer"]["classification"]),
        source=one_of(p["source"] for p in config["transfer"]["classification"]),
        seed=one_of(map(str, config["seeds"])),
    conda:
        "../envs/pipeline.yaml"
    threads: config["train"]["cpu_threads"]
    params:
        tracked=tracked(
            "r", "n", "resizer", *COMMON, "transfer", "classification.model_size"
        ),
        out=lambda wildcards, output: os.path.dirname(output.model),
        live=lambda wildcards, output: os.path.dirname(output.live_metrics),
    shell:
        train_shell(
            "classification",
            "{wildcards.target}",
            "from_{wildcards.source}",
            init=True,
            resizer_init=True,
        )


rule ablation_classification:
    input:
        init=default_of("classification"),
        manifests=MANIFESTS["classification"],
        code=CODE["train"],
    output:
        **run_outputs("classification", mode="r{r}_n{n}"),
    log:
        "logs/train/classification/{backbone}/r{r}_n{n}/seed{seed}.log",
    wildcard_constraints:
        backbone=one_of(config["ablation"]["classification"]),
        r=one_of(map(str, config["ablation"]["r"])),
        n=one_of(map(str, config["ablation"]["n"])),
        seed=one_of(map(str, config["ablation"]["seeds"])),
    conda:
        "../envs/pipeline.yaml"
    threads: config["train"]["cpu_threads"]
    params:
        tracked=tracked(
            "resizer",
            *COMMON,
            "train.finetune",
            "ablation.input_size",
            "classification.model_size",
        ),
        out=lambda wildcards, output: os.path.dirname(output.model),
        live=lambda wildcards, output: os.path.dirname(output.live_metrics),
    shell:
        train_shell("classification", mode="r{wildcards.r}_n{wildcards.n}", init=True)


rule transfer_iqa:
    input:
        init="data/runs/iqa/{target}/default/seed{seed}/model.pt",
        resizer_init=source_checkpoint("iqa"),
        manifests=MANIFESTS["iqa"],
        code=CODE["train"],
    output:
        **run_outputs("iqa", "{target}", "from_{source}"),
    log:
        "logs/train/iqa/{target}/from_{source}/seed{seed}.log",
    wildcard_constraints:
        target=one_of(p["target"] for p in config["transfer"]["iqa"]),
        source=one_of(p["source"] for p in config["transfer"]["iqa"]),
        seed=one_of(map(str, config["seeds"])),
    conda:
        "../envs/pipeline.yaml"
    threads: config["train"]["cpu_threads"]
    params:
        tracked=tracked("r", "n", "resizer", *COMMON, "transfer", "iqa.model_size"),
        out=lambda wildcards, output: os.path.dirname(output.model),
        live=lambda wildcards, output: os.path.dirname(output.live_metrics),
    shell:
        train_shell(
            "iqa",
            "{wildcards.target}",
            "from_{wildcards.source}",
            init=True,
            resizer_init=True,
        )


rule ablation_iqa:
    input:
        init=default_of("iqa"),
        manifests=MANIFESTS["iqa"],
        code=CODE["train"],
    output:
        **run_outputs("iqa", mode="r{r}_n{n}"),
    log:
        "logs/train/iqa/{backbone}/r{r}_n{n}/seed{seed}.log",
    wildcard_constraints:
        backbone=one_of(config["ablation"]["iqa"]),
        r=one_of(map(str, config["ablation"]["r"])),
        n=one_of(map(str, config["ablation"]["n"])),
        seed=one_of(map(str, config["ablation"]["seeds"])),
    conda:
        "../envs/pipeline.yaml"
    threads: config["train"]["cpu_threads"]
    params:
        tracked=tracked(
            "resizer",
            *COMMON,
            "train.finetune",
            "ablation.input_size",
            "iqa.model_size",
        ),
        out=lambda wildcards, output: os.path.dirname(output.model),
        live=lambda wildcards, output: os.path.dirname(output.live_metrics),
    shell:
        train_shell("iqa", mode="r{wildcards.r}_n{wildcards.n}", init=True)
