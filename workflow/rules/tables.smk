# Tables and figures users review in results/ (and in `snakemake --report report.html`).


rule tables:
    input:
        metrics=[
            f"results/metrics/{r.task}/{r.backbone}/{r.mode}/seed{r.seed}.json"
            for r in RUNS
        ],
        code=CODE["tables"],
    output:
        **table_outputs(),
    log:
        "logs/tables.log",
    conda:
        "../envs/pipeline.yaml"
    params:
        tracked=tracked(
            "seeds",
            "classification",
            "iqa",
            "transfer",
            "ablation",
            "train.scratch.epochs",
            "train.finetune.epochs",
            "train.iqa.epochs",
        ),
        out=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "python -m pipeline tables --metrics results/metrics --out {params.out} --log {log}"


rule figures:
    input:
        tables=[
            f"results/tables/{n}.csv" for n in ("classification", "iqa", "ablation")
        ],
        runs=[
            f"data/runs/{r.task}/{r.backbone}/{r.mode}/seed{r.seed}/{f}"
            for r in RUNS
            for f in ("model.pt", "history.csv")
        ],
        manifests=list(MANIFESTS.values()),
        code=CODE["figures"],
    output:
        **{
            name: report(
                f"results/figures/{name}.png",
                caption=f"../report/{name}.rst",
                category="Figures",
            )
            for name in FIGURES
        },
    log:
        "logs/figures.log",
    conda:
        "../envs/pipeline.yaml"
    params:
        tracked=tracked(
            "seeds", "loader", "r", "n", "figures", "classification", "iqa", "ablation"
        ),
        out=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "python -m pipeline figures --tables results/tables --runs data/runs"
        " --out {params.out} --log {log}"


rule resizer_probe:
    input:
        runs=[
            f"data/runs/{r.task}/{r.backbone}/{r.mode}/seed{r.seed}/{f}"
            for r in RUNS
            if r.task == "classification"
            for f in ("model.pt", "history.csv")
        ],
        manifests=MANIFESTS["classification"],
        code=CODE["resizer-probe"],
    output:
        csv="results/tables/resizer_probe.csv",
        md="results/tables/resizer_probe.md",
    log:
        "logs/resizer-probe.log",
    conda:
        "../envs/pipeline.yaml"
    params:
        tracked=tracked(
            "seed",
            "seeds",
            "probe",
            "loader",
            "r",
            "n",
            "resizer",
            "classification",
            "data.imagenet.root",
        ),
        out=lambda wildcards, output: output.csv[: -len(".csv")],
    shell:
        "python -m pipeline resizer-probe --runs data/runs --out {params.out} --log {log}"
