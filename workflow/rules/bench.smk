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
    # its loader threads; Snakemake scales a job's threads down to --cores, so on a machine
    # with bench.workers cores nothing else runs beside it to distort the timings
    threads: config["bench"]["workers"]
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
