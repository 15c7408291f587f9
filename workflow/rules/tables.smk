# Tables users review in results/.


rule tables:
    input:
        metrics=[METRICS.format(backbone=r.backbone, mode=r.mode) for r in RUNS],
        code=CODE["tables"],
    output:
        csv="results/tables/classification.csv",
        md="results/tables/classification.md",
    params:
        tracked=tracked(
            "classification", "train.scratch.epochs", "train.finetune.epochs"
        ),
        metrics="results/metrics/classification",
        out="results/tables",
    log:
        "logs/tables.log",
    conda:
        "../envs/pipeline.yaml"
    shell:
        "python -m pipeline tables --metrics {params.metrics} --out {params.out} --log {log}"
