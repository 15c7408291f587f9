# Tables users review in results/.


rule tables:
    input:
        metrics=[
            f"results/metrics/classification/{r.backbone}/{r.mode}.json" for r in RUNS
        ],
        code=CODE["tables"],
    output:
        csv="results/tables/classification.csv",
        md="results/tables/classification.md",
    log:
        "logs/tables.log",
    conda:
        "../envs/pipeline.yaml"
    params:
        tracked=tracked(
            "classification", "train.scratch.epochs", "train.finetune.epochs"
        ),
        metrics=lambda wildcards, input: os.path.dirname(
            os.path.dirname(input.metrics[0])
        ),
        out=lambda wildcards, output: os.path.dirname(output.csv),
    shell:
        "python -m pipeline tables --metrics {params.metrics} --out {params.out} --log {log}"
