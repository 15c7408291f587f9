# Training: one job per run (task, backbone, mode, seed); the same stages as dvc.yaml's
# train-*/iqa-*/transfer-*/ablation-* (tests/test_dag.py keeps them identical).

RUN = "{task}/{backbone}/{mode}/seed{seed}"
COMMON = ["loader", "train.cpu_threads", "train.sgd"]


def run_outputs(task, backbone="{backbone}", mode="{mode}"):
    path = f"{task}/{backbone}/{mode}/seed{{seed}}"
    return dict(
        model=f"data/runs/{path}/model.pt",
        history=f"data/runs/{path}/history.csv",
        metrics=f"results/metrics/{path}.json",
        live_metrics=f"results/live/{path}/metrics.json",
        live_plots=directory(f"results/live/{path}/plots/metrics"),
    )


def train_shell(task, backbone="{wildcards.backbone}", mode="{wildcards.mode}", init=False,
                resizer_init=False):
    return (
        f"python -m pipeline train --task {task} --backbone {backbone} --mode {mode}"
        " --seed {wildcards.seed} --manifests {input.manifests}"
        + (" --init {input.init}" if init else "")
        + (" --resizer-init {input.resizer_init}" if resizer_init else "")
        + " --out {params.out} --metrics {output.metrics} --live {params.live} --log {log}"
    )


def default_of(task):
    return f"data/runs/{task}/{{backbone}}/default/seed{{seed}}/model.pt"


FAMILIES = {
    # (rule, task, modes section, init, params after COMMON)
    "train_baseline": ("classification", "baselines", None, ["train.scratch"]),
    "train_fixed": ("classification", "fixed", "default", ["train.finetune"]),
    "train_learned": ("classification", "learned", "default", ["train.finetune"]),
    "iqa_baseline": ("iqa", "baselines", "classification", ["train.iqa"]),
    "iqa_fixed": ("iqa", "fixed", "default", ["train.finetune"]),
    "iqa_learned": ("iqa", "learned", "default", ["train.finetune"]),
}

for _name, (_task, _section, _init, _extra) in FAMILIES.items():
    _learned = _section == "learned"
    _inputs = dict(manifests=MANIFESTS[_task], code=CODE["train"])
    if _init == "default":
        _inputs["init"] = default_of(_task)
    elif _init == "classification":
        _inputs["init"] = default_of("classification")
    _tracked = (
        (["r", "n"] if _learned else [])
        + COMMON
        + _extra
        + ([f"{_task}.model_size"] if _learned else [])
        + [f"{_task}.{_section}.{{mode}}"]
    )

    rule:
        name:
            _name
        input:
            **_inputs,
        output:
            **run_outputs(_task),
        log:
            f"logs/train/{_task}/{{backbone}}/{{mode}}/seed{{seed}}.log",
        wildcard_constraints:
            backbone=one_of(config[_task]["backbones"]),
            mode=one_of(config[_task][_section]),
            seed=one_of(map(str, config["seeds"])),
        conda:
            "../envs/pipeline.yaml"
        threads: config["train"]["cpu_threads"]
        params:
            tracked=tracked(*_tracked),
            out=lambda wildcards, output: os.path.dirname(output.model),
            live=lambda wildcards, output: os.path.dirname(output.live_metrics),
        shell:
            train_shell(_task, init=_init is not None)


for _task in TASKS:

    rule:
        name:
            f"transfer_{_task}"
        input:
            init=f"data/runs/{_task}/{{target}}/default/seed{{seed}}/model.pt",
            resizer_init=f"data/runs/{_task}/{{source}}/{config['transfer']['mode']}/seed{{seed}}/model.pt",
            manifests=MANIFESTS[_task],
            code=CODE["train"],
        output:
            **run_outputs(_task, "{target}", "from_{source}"),
        log:
            f"logs/train/{_task}/{{target}}/from_{{source}}/seed{{seed}}.log",
        wildcard_constraints:
            target=one_of(p["target"] for p in config["transfer"][_task]),
            source=one_of(p["source"] for p in config["transfer"][_task]),
            seed=one_of(map(str, config["seeds"])),
        conda:
            "../envs/pipeline.yaml"
        threads: config["train"]["cpu_threads"]
        params:
            tracked=tracked("r", "n", *COMMON, "transfer", f"{_task}.model_size"),
            out=lambda wildcards, output: os.path.dirname(output.model),
            live=lambda wildcards, output: os.path.dirname(output.live_metrics),
        shell:
            train_shell(
                _task,
                "{wildcards.target}",
                "from_{wildcards.source}",
                init=True,
                resizer_init=True,
            )

    rule:
        name:
            f"ablation_{_task}"
        input:
            init=default_of(_task),
            manifests=MANIFESTS[_task],
            code=CODE["train"],
        output:
            **run_outputs(_task, mode="r{r}_n{n}"),
        log:
            f"logs/train/{_task}/{{backbone}}/r{{r}}_n{{n}}/seed{{seed}}.log",
        wildcard_constraints:
            backbone=one_of(config["ablation"][_task]),
            r=one_of(map(str, config["ablation"]["r"])),
            n=one_of(map(str, config["ablation"]["n"])),
            seed=one_of(map(str, config["seeds"])),
        conda:
            "../envs/pipeline.yaml"
        threads: config["train"]["cpu_threads"]
        params:
            tracked=tracked(
                *COMMON, "train.finetune", "ablation.input_size", f"{_task}.model_size"
            ),
            out=lambda wildcards, output: os.path.dirname(output.model),
            live=lambda wildcards, output: os.path.dirname(output.live_metrics),
        shell:
            train_shell(_task, mode="r{wildcards.r}_n{wildcards.n}", init=True)
