# One-command set-up: `make demo` (embedded, no servers) and `make test` (whole suite on real servers).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)

.PHONY: install demo test test-unit services services-stop lint bench schemas clean browser graphql-schema

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

demo: install
	$(BIN)/cse demo

# Starts the real servers it needs (and stops only what it started), then runs every test group.
test: install browser
	bash deploy/local/with-services.sh $(BIN)/python -m pytest tests

test-unit: install
	$(BIN)/python -m pytest -m unit tests

# Debian's chromium + chromedriver for the dashboard's browser test (tests/e2e/test_dashboard_browser.py).
browser:
	bash deploy/local/browser.sh

graphql-schema: install
	$(BIN)/cse serve --print-schema > docs/graphql/schema.graphql

services:
	bash deploy/local/services.sh start

services-stop:
	bash deploy/local/services.sh stop

lint: install
	$(BIN)/ruff check domain application adapters projections streams tests
	$(BIN)/mypy --strict domain application

schemas: install
	$(BIN)/cse schemas --out docs/events/schemas

bench: install
	$(BIN)/pip install -q -c requirements.lock -c requirements-bench.lock -e '.[bench]'
	$(BIN)/python tests/bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
