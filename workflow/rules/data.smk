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
        directory("data/prepared/imagenet"),
    log:
        "logs/prepare-imagenet.log",
    conda:
        "../envs/pipeline.yaml"
    params:
        tracked=tracked("data.imagenet"),
    shell:
        "python -m pipeline prepare-imagenet --out {output} --log {log}"
