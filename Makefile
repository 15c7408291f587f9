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

.PHONY: setup repro snakemake test test-quick lint envs clean

setup: $(VENV)/.synced

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: uv.lock pyproject.toml Makefile | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

# dvc.yaml is the plan (pipeline/plan.py) rendered; regenerated when the plan changes.
dvc.yaml: pipeline/plan.py pipeline/dvcyaml.py | $(VENV)/.synced
	python -m pipeline.dvcyaml $@

repro: setup dvc.yaml
	dvc repro
	@echo
	@echo "Tables: results/tables/ (classification, iqa, transfer, ablation, resizer_params)."
	@echo "Figures: results/figures/; per-run metrics: results/metrics/; headline: dvc metrics show;"
	@echo "per-epoch curves: results/live/ (dvc plots show); report: snakemake --report report.html"

snakemake: setup
	snakemake --cores all

test: setup
	python -m pytest

# the inner loop: everything but the whole-DAG runs (CI runs `make test`, all of it)
test-quick: setup
	python -m pytest -m "not e2e"

lint: setup
	snakemake --lint
	snakefmt --check Snakefile workflow/

envs: setup
	python workflow/scripts/conda_envs.py

clean:
	rm -rf $(VENV) $(TOOLS)
