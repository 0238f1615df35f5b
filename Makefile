# gogooku3 — developer entry points. `make demo` and `make test` are the two
# commands a new user needs; everything else is what they call.
SHELL := /bin/bash
PYTHON ?= python3.11
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JARS_STAMP := .cache/ivy/.resolved
PYTEST_ARGS ?=

.PHONY: setup sysdeps jars test lint demo history-server airflow airflow-unpause lock clean-lake help mlflow

help:
	@echo "make demo            run the whole pipeline on the embedded default"
	@echo "make test            run the test suite"
	@echo "make setup           create .venv from requirements/lock.txt and resolve Spark's Delta jars"
	@echo "make lint            ruff"
	@echo "make history-server  Spark history server on the event-log directory"
	@echo "make airflow         Airflow (UI, scheduler, DAG processor, triggerer) on the embedded default"
	@echo "make airflow-unpause put the DAGs on their Tokyo schedules (next runs show in the UI)"
	@echo "make lock            re-resolve requirements/lock.txt from requirements/requirements.in"
	@echo "make mlflow          MLflow UI on the project's tracking store (MLFLOW_PORT, default 5000)"

# Debian packages the stack needs; installs only what is missing (root or sudo).
sysdeps:
	@bash scripts/sysdeps.sh

$(STAMP): requirements/lock.txt pyproject.toml
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	@test -x $(BIN)/python || uv venv --quiet --python $(PYTHON) $(VENV)
	uv pip install --quiet --python $(BIN)/python -r requirements/lock.txt
	uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

$(JARS_STAMP): $(STAMP) configs/ivysettings.xml
	$(BIN)/python -m gogooku3.lake.spark --resolve-jars
	@touch $(JARS_STAMP)

jars: $(JARS_STAMP)

setup: $(STAMP) $(JARS_STAMP)

lock:
	uv pip compile requirements/requirements.in --python-version 3.11 -o requirements/lock.txt

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .

demo: setup
	@bash scripts/demo.sh

history-server: setup
	@bash scripts/history_server.sh

clean-lake:
	rm -rf lake spark-events

airflow: setup
	@bash scripts/airflow.sh

airflow-unpause: setup
	@bash scripts/airflow_unpause.sh

# MLflow UI over the store `gogooku3 train` writes to (settings: mlflow_tracking_uri).
mlflow: setup
	$(BIN)/mlflow ui --backend-store-uri "$$($(BIN)/gogooku3 config get mlflow_tracking_uri)" \
	  --host 127.0.0.1 --port $${MLFLOW_PORT:-5000}
