# Tables and figures users review in results/ (and in `snakemake --report report.html`).

TABLES = ["classification", "iqa", "transfer", "ablation"]
FIGURES = [
    "cost_classification",
    "cost_iqa",
    "ablation_classification",
    "ablation_iqa",
    "examples",
    "training_curves",
]
MAIN_FAMILIES = ("baseline", "fixed", "learned")


def table_outputs():
    return {
        f"{name}_{ext}": report(
            f"results/tables/{name}.{ext}",
            caption=f"../report/table_{name}.rst",
            category="Tables",
            subcategory=name,
        )
        for name in TABLES
        for ext in ("csv", "md")
    }


rule tables:
    input:
        metrics=[f"results/metrics/{r.task}/{r.backbone}/{r.mode}/seed{r.seed}.json" for r in RUNS],
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
        tables=[f"results/tables/{n}.csv" for n in ("classification", "iqa", "ablation")],
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
