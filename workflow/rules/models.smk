# Model facts that need no training: the resizer's size over r x n.


rule resizer_params:
    input:
        code=CODE["resizer-params"],
    output:
        csv="results/tables/resizer_params.csv",
        md="results/tables/resizer_params.md",
    params:
        tracked=tracked("resizer_params"),
        stem="results/tables/resizer_params",
    log:
        "logs/resizer-params.log",
    conda:
        "../envs/pipeline.yaml"
    shell:
        "python -m pipeline resizer-params --out {params.stem} --log {log}"
