# Entry points. `make demo` and `make test` work on a fresh clone: they build the environment.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: venv demo test lint ui ui-stop bench-ingest clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check uv
	$(VENV)/bin/uv pip install -q -p $(PY) -r requirements.lock
	touch $@

## Generate a week of sample exports for 3 locations and run the pipeline on them (embedded).
demo: venv
	source scripts/local_env.sh && $(PY) scripts/demo.py --locations 3 --days 7

## Lint, then the whole test suite (DuckDB and PostgreSQL warehouses).
test: venv lint
	$(VENV)/bin/pytest -q

lint: venv
	$(VENV)/bin/ruff check .

## Airflow UI on the embedded default (http://localhost:8080); `make ui-stop` stops it.
ui: venv
	scripts/airflow_ui.sh start

ui-stop:
	scripts/airflow_ui.sh stop

bench-ingest: venv
	source scripts/local_env.sh && $(PY) bench/bench_ingest.py

clean:
	rm -rf var
