# hookclient: the two commands a newcomer needs are `make demo` and `make test`.
# Both bootstrap .venv with the stdlib venv and pip; nothing else is assumed installed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help venv compile test lint typecheck unit demo clean

help:
	@echo "make demo   run the whole job end to end on local defaults (receiver, hooks, outage)"
	@echo "make test   lint (ruff), type-check (mypy --strict) and run the test suite (pytest)"
	@echo "make clean  remove .venv, caches and demo logs"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "hookclient needs Python >= 3.11: set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,receiver]' --config-settings editable_mode=compat
	@touch $@

# Bytecode for the hook's modules, as a regular pip install would leave: the hook runs on
# every Claude Code event, and compiling its sources each time (PYTHONDONTWRITEBYTECODE
# is set on some machines) would triple its start-up.
compile: $(STAMP)
	@$(PY) -m compileall -q hookclient queued receiver >/dev/null

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(VENV)/bin/pytest

test: lint typecheck unit

demo: compile
	$(PY) scripts/demo.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info
	find logs -type f ! -name .gitkeep -delete
