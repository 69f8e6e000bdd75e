# clearing — the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help demo test test-airflow lint bench wheel clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP) ## install, then run the main job on data_samples/ into ./var
	$(BIN)/python -m clearing.demo data_samples var

test: lint ## install, then lint, type-check and run all tests (fuzzing and Airflow DAGs included)
	$(BIN)/pytest -q
	$(MAKE) test-airflow

lint: $(STAMP) ## ruff (lint and format) and mypy, as `make test` runs them
	$(BIN)/ruff check clearing tests pipelines
	$(BIN)/ruff format --check clearing tests pipelines
	$(BIN)/mypy

AIRFLOW_VENV := .venv-airflow

test-airflow: ## the Airflow DAG tests (pipelines/) in their own virtualenv (Airflow 3)
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install -q --upgrade pip
	$(AIRFLOW_VENV)/bin/pip install -q -e '.[dev,airflow]'
	$(AIRFLOW_VENV)/bin/pytest -q -p no:cacheprovider tests/pipelines

bench: $(STAMP) ## benchmarks (tests/bench), figures printed and written to var/bench
	$(BIN)/pytest -q -m bench -s tests/bench

wheel: $(STAMP) ## build dist/clearing-<version>-py3-none-any.whl (install it with pipx)
	$(BIN)/pip wheel -q --no-deps -w dist .

clean: ## remove the venvs, ./var, build/ and dist/
	rm -rf $(VENV) $(AIRFLOW_VENV) var build dist
