# Model facts that need no training: the resizer's size over r x n.


rule resizer_params:
    input:
        code=CODE["resizer-params"],
    output:
        csv="results/tables/resizer_params.csv",
        md="results/tables/resizer_params.md",
    log:
        "logs/resizer-params.log",
    conda:
        "../envs/pipeline.yaml"
    params:
        tracked=tracked("resizer_params"),
        stem=lambda wildcards, output: os.path.splitext(output.csv)[0],
    shell:
        "python -m pipeline resizer-params --out {params.stem} --log {log}"
