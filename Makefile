# One-command set-up: `make demo` (embedded, no servers) and `make test` (whole suite on real servers).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
# The stamp covers the Rust sources too, so a Rust edit rebuilds the compiled core (cse_core).
CORE_SOURCES := $(shell find core/crates -name '*.rs' 2>/dev/null | LC_ALL=C sort) core/Cargo.toml core/Cargo.lock \
                core/crates/market/Cargo.toml core/crates/py/Cargo.toml core/pyproject.toml \
                $(shell find core/python -type f -not -name '*.pyc' 2>/dev/null | LC_ALL=C sort)
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock $(CORE_SOURCES) | cksum | cut -d' ' -f1)

.PHONY: install demo test test-unit services services-stop lint bench schemas clean browser graphql-schema cargo core-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The compiled core needs Rust (cargo >= 1.82) and crates.io; it is never skipped (no silent slow path).
cargo:
	@cargo --version >/dev/null 2>&1 || { echo "error: cargo not found: the compiled market core (core/) needs a Rust toolchain >= 1.82 (rustup or Debian's cargo) on PATH" >&2; exit 1; }

$(STAMP): $(BIN)/python pyproject.toml requirements.lock $(CORE_SOURCES) | cargo
	$(BIN)/pip install -q -c requirements.lock ./core
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

demo: install
	$(BIN)/cse demo

# Starts the real servers it needs (and stops only what it started), then runs every test group.
test: install browser core-test
	bash deploy/local/with-services.sh $(BIN)/python -m pytest tests

# The Rust logic crate's own tests (unit + proptest); runs before pytest so CI reads pytest's summary last.
core-test: cargo
	cargo test --locked --manifest-path core/Cargo.toml

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
	cargo clippy --locked --manifest-path core/Cargo.toml --all-targets -- -D warnings

schemas: install
	$(BIN)/cse schemas --out docs/events/schemas

bench: install
	$(BIN)/pip install -q -c requirements.lock -c requirements-bench.lock -e '.[bench]'
	$(BIN)/python tests/bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var core/target
