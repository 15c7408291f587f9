# Quick start: `make repro` (set up if missing, then run the default DAG with DVC) and
# `make test` (set up if missing, then run the test suite). Needs only Python 3.11 and PyPI.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TOOLS := .tools
UV_VERSION := 0.13.9
UV := $(TOOLS)/bin/uv
BIN := $(abspath $(VENV))/bin
# Never let uv fetch a Python of its own; stage commands must find the venv's `python`.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Install packages with their bytecode. Where PYTHONDONTWRITEBYTECODE is set (as on the CI and
# dev machines), Python never caches what it compiles, so without this every stage process
# recompiles torch, torchvision and timm from source: 14 s more per stage on 2 cores.
export UV_COMPILE_BYTECODE := 1
export PATH := $(BIN):$(PATH)
space := $(subst ,, )

.PHONY: setup repro snakemake stage-times test test-quick lint envs clean gpu-wheels gpu-wheels-dali

setup: $(VENV)/.synced

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: uv.lock pyproject.toml Makefile | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

# dvc.yaml is the plan (pipeline/dag/plan.py) rendered; regenerated when the plan or anything it
# builds on (the family table, the table pages) changes.
dvc.yaml: $(wildcard pipeline/*.py pipeline/*/*.py) params.yaml | $(VENV)/.synced
	python -m pipeline.dag.dvcyaml $@

# The default DAG, its training runs side by side on every core (one thread each:
# train.cpu_threads) under Snakemake, the rest under DVC, dvc.lock recording all of it
# (pipeline/stages/repro.py); then every table against the committed ones.
repro: setup dvc.yaml
	python -m pipeline repro
	@echo
	@python -m pipeline compare || echo "compare could not read the committed tables (above); the new ones are written"
	@echo
	@echo "Tables: results/tables/ (classification, iqa, transfer, ablation, resizer_params)."
	@echo "Figures: results/figures/; per-run metrics: results/metrics/; headline: dvc metrics show;"
	@echo "per-epoch curves: results/live/ (dvc plots show); report: snakemake --report report.html"

snakemake: setup
	snakemake --cores all

# The DAG's own benchmark, from the timing line every finished stage logs: per stage wall and
# CPU seconds (start-up, waiting for data, compute) and the run's total (results/bench/stages.csv).
stage-times: setup
	python workflow/scripts/stage_times.py

# pytest-xdist workers, each taking whole test modules (a module's fixtures are built once):
# on 2 cores the whole-DAG modules then run beside the rest.
TEST_WORKERS ?= 2
PYTEST := python -m pytest -n $(TEST_WORKERS) --dist loadscope

test: setup
	$(PYTEST)

# the inner loop: everything but the whole-DAG runs (CI runs `make test`, all of it)
test-quick: setup
	$(PYTEST) -m "not e2e"

lint: setup
	snakemake --lint
	snakefmt --check Snakefile workflow/

envs: setup
	python workflow/scripts/conda_envs.py

# Wheels the GPU machine lacks, for workflow/scripts/gpu_check.sh (README, "GPU check"): its
# Python is 3.12 and it reaches no registry. gpu-wheels: the params validator (jsonschema, at
# the versions uv.lock pins) into .whl/. gpu-wheels-dali: DALI and its libraries, bundled and
# split into parts that one device call each can carry (64 MiB a call, the tree included).
GPU_PIP = $(TOOLS)/bin/pip download --quiet --disable-pip-version-check --no-deps \
	--only-binary=:all: --python-version 3.12 --implementation cp \
	--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
	--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
GPU_NEEDS := jsonschema jsonschema-specifications referencing rpds-py
DALI_NEEDS := nvidia-dali-cuda130==2.4.0 'nvidia-nvimgcodec-cu13>=0.9,<0.10' \
	nvidia-libnvcomp-cu13==5.3.0.16 nvidia-nvjpeg2k-cu13 nvidia-nvtiff-cu13 astunparse gast \
	optree nvtx makefun 'libcst~=1.8'
PART_SIZE := 56M

gpu-wheels: | $(UV)
	$(GPU_PIP) -d .whl $$($(UV) export --frozen --no-hashes --format requirements-txt \
		| grep -E '^($(subst $(space),|,$(GPU_NEEDS)))==' | cut -d' ' -f1)
	@du -ch .whl/*.whl | tail -1

gpu-wheels-dali: | $(UV)
	rm -rf .whl-dali .whl-parts && mkdir -p .whl-parts
	$(GPU_PIP) -d .whl-dali $(DALI_NEEDS)
	tar -cf .whl-parts/dali-wheels.tar -C .whl-dali .
	cd .whl-parts && sha256sum dali-wheels.tar > dali-wheels.tar.sha256 \
		&& split -b $(PART_SIZE) dali-wheels.tar dali-wheels.tar.part- && rm dali-wheels.tar
	rm -rf .whl-dali
	@ls -l .whl-parts

clean:
	rm -rf $(VENV) $(TOOLS)
