# The two set-up commands: `make demo` and `make test`. Both work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench docs reliability clean

$(BIN)/courier: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

demo: $(BIN)/courier
	$(BIN)/python -m examples.demo --workspace demo-workspace

test: $(BIN)/courier
	$(BIN)/python -m pytest -q

bench: $(BIN)/courier
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Fault injection and adversarial trials over the whole workflow (docs/reliability.md);
# RELIABILITY_ARGS="--seed N" replays a run. Fails on any lost, duplicated or leaked datum.
reliability: $(BIN)/courier
	$(BIN)/python -m reliability $(RELIABILITY_ARGS)

docs: $(BIN)/courier
	$(BIN)/python -m tests.cli_reference

lint: $(BIN)/courier
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo-workspace bench-data .pytest_cache
