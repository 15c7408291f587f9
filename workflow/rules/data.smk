# Datasets: the embedded synthetic set and the manifests every training stage reads.


rule synth_imagenet:
    input:
        code=CODE["synth-imagenet"],
    output:
        directory("data/synthetic/imagenet"),
    log:
        "logs/synth-imagenet.log",
    conda:
        "../envs/pipeline.yaml"
    params:
        tracked=tracked("seed", "synthetic.imagenet"),
    shell:
        "python -m pipeline synth-imagenet --out {output} --log {log}"


rule prepare_imagenet:
    input:
        root=config["data"]["imagenet"]["root"],
        code=CODE["prepare-imagenet"],
    output:
        manifests=directory("data/prepared/imagenet"),
        report="results/data/imagenet_report.csv",
        summary="results/data/imagenet_summary.json",
    log:
        "logs/prepare-imagenet.log",
    conda:
        "../envs/pipeline.yaml"
    params:
        tracked=tracked("data.imagenet", "data.check"),
    shell:
        "python -m pipeline prepare-imagenet --out {output.manifests}"
        " --report {output.report} --summary {output.summary} --log {log}"


rule preresize_imagenet:
    input:
        manifests="data/prepared/imagenet",
        code=CODE["preresize"],
    output:
        directory("data/preresized/imagenet"),
    log:
        "logs/preresize-imagenet.log",
    conda:
        "../envs/pipeline.yaml"
    params:
        tracked=tracked("preresize"),
    shell:
        "python -m pipeline preresize --manifests {input.manifests} --out {output}"
        " --log {log}"


rule synth_ava:
    input:
        code=CODE["synth-ava"],
    output:
        directory("data/synthetic/ava"),
    log:
        "logs/synth-ava.log",
    conda:
        "../envs/pipeline.yaml"
    params:
        tracked=tracked("seed", "synthetic.ava"),
    shell:
        "python -m pipeline synth-ava --out {output} --log {log}"


rule prepare_ava:
    input:
        root=config["data"]["ava"]["root"],
        code=CODE["prepare-ava"],
    output:
        manifests=directory("data/prepared/ava"),
        report="results/data/ava_report.csv",
        summary="results/data/ava_summary.json",
    log:
        "logs/prepare-ava.log",
    conda:
        "../envs/pipeline.yaml"
    params:
        tracked=tracked("data.ava", "data.check"),
    shell:
        "python -m pipeline prepare-ava --out {output.manifests}"
        " --report {output.report} --summary {output.summary} --log {log}"


rule probe:
    input:
        manifests="data/preresized/imagenet",
        code=CODE["probe"],
    output:
        csv="results/tables/probe.csv",
        md="results/tables/probe.md",
    log:
        "logs/probe.log",
    conda:
        "../envs/pipeline.yaml"
    params:
        tracked=tracked(
            "seed",
            "probe",
            "loader",
            "data.imagenet.root",
            "classification.baselines.default",
            "classification.learned",
            "classification.joint",
        ),
        out=lambda wildcards, output: output.csv[: -len(".csv")],
    shell:
        "python -m pipeline probe --manifests {input.manifests} --out {params.out}"
        " --log {log}"
