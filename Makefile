# Quick start: `make sweep` (the main job on bundled offline data) and `make test`.
# Both create .venv and install the project on first use.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed
SWEEP_ARGS ?= -P dataset=digits -P depths=1,5,9,...,37
REPORT_ARGS ?= -P experiment_name=depth-quickstart -P lang=en
LOCALES = report_templates/locale

.PHONY: install sweep test benchmark clean report browser-deps translations

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

sweep: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/mlflow run . --env-manager local \
	    --experiment-name depth-quickstart $(SWEEP_ARGS)

# report.html of the latest finished sweep of depth-quickstart (REPORT_ARGS: see MLproject).
report: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/mlflow run . --env-manager local -e report \
	    --experiment-name depth-quickstart $(REPORT_ARGS)

# The report's browser test renders report.html in Debian's chromium: installed here when
# running as root (CI, containers); otherwise install it yourself or the test is skipped
# (under CI=true it fails instead).
browser-deps:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "note: no /usr/bin/chromium; 'sudo apt-get install chromium' to run the browser test"; fi

# After editing report_templates/*.j2: refresh the catalog, then translate the new entries
# (tests/test_report.py fails while one is missing).
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output \
	    -o $(LOCALES)/messages.pot report_templates
	$(BIN)/pybabel update -i $(LOCALES)/messages.pot -d $(LOCALES) --no-fuzzy-matching \
	    --ignore-obsolete --width 100

test: $(STAMP) browser-deps
	$(BIN)/python -m pytest

# Fashion-MNIST through Keras' cache: set KERAS_HOME offline (see README).
benchmark: $(STAMP)
	$(BIN)/python benchmarks/diagnostics_overhead.py

clean:
	rm -rf $(VENV) mlflow.db mlruns mlartifacts optuna.db report.html
