# Quick start: `make sweep` (the main job on bundled offline data) and `make test`.
# Both create .venv and install the project on first use.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed
SWEEP_ARGS ?= -P dataset=digits -P depths=1,5,9,...,37

.PHONY: install sweep test benchmark clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

sweep: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/mlflow run . --env-manager local \
	    --experiment-name depth-quickstart $(SWEEP_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest

benchmark: $(STAMP)
	$(BIN)/python benchmarks/diagnostics_overhead.py

clean:
	rm -rf $(VENV) mlflow.db mlruns mlartifacts optuna.db report.html
