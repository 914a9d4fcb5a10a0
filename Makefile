# One entry point for people and CI. Needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tokenproof-installed
# Parallel test workers (pytest-xdist); each starts its own PostgreSQL.
WORKERS ?= 2

.PHONY: install verify test test-fast check format clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

verify: install
	$(BIN)/tokenproof verify $(ARGS)

test: install
	$(BIN)/python -m pytest -n $(WORKERS) --durations=20 $(ARGS)

test-fast: install
	$(BIN)/python -m pytest -m unit $(ARGS)

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache reports *.egg-info
