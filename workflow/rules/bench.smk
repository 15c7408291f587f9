# Loader benchmark: images/s and CPU time per image of every available loader.


rule bench_loaders:
    input:
        code=CODE["bench-loaders"],
    output:
        "results/bench/loaders.csv",
    log:
        "logs/bench-loaders.log",
    conda:
        "../envs/pipeline.yaml"
    # nothing else runs beside it, so other jobs do not distort the timings
    threads: workflow.cores
    params:
        tracked=tracked(
            "seed",
            "synthetic.imagenet",
            "loader.train_scale",
            "loader.eval_crop",
            "bench",
        ),
    shell:
        "python -m pipeline bench-loaders --out {output} --log {log}"
