# hookclient: the two commands a newcomer needs are `make demo` and `make test`.
# Both bootstrap .venv with the stdlib venv and pip; nothing else is assumed installed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help venv compile test lint typecheck unit demo screenshots clean claude e2e bench chaos soak fuzz audit test-min

help:
	@echo "make demo   run the whole job end to end on local defaults (receiver, hooks, outage)"
	@echo "make test   lint (ruff), type-check (mypy --strict) and run the test suite (pytest)"
	@echo "make screenshots  the README's dashboard pictures, from a make demo store, in Chromium"
	@echo "make e2e    end-to-end tests inside the real Claude Code CLI (installs it once: make claude)"
	@echo "make bench  every benchmark next to its yardsticks (takes minutes)"
	@echo "make chaos  the crash and chaos suite at 5x its make-test size (CHAOS_SCALE)"
	@echo "make soak   10,000 events through the chaos server with daemon restarts"
	@echo "make fuzz   the property tests and schemathesis runs, 1,000 examples each (FUZZ_EXAMPLES)"
	@echo "make audit  pip-audit of every installed package (says so when it cannot look up)"
	@echo "make test-min  the tests against the lowest dependency versions pyproject allows"
	@echo "make clean  remove .venv, caches and demo logs"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "hookclient needs Python >= 3.11: set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,receiver,postgres]' --config-settings editable_mode=compat
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
	$(VENV)/bin/pytest -m "not claude"

test: lint typecheck unit

# The crash matrix and chaos tests run in `make test` at a bounded size; these scale
# them up. Each test prints a CHAOS line of figures, collected in logs/chaos-report.jsonl.
chaos: compile
	CHAOS_SCALE=$${CHAOS_SCALE:-5} CHAOS_REPORT=$(CURDIR)/logs/chaos-report.jsonl \
		$(VENV)/bin/pytest -m chaos -s -q

# The property tests (tests/test_fuzz.py) and the contract's schemathesis runs against a
# live store (tests/test_contract_fuzz.py) run in `make test` at a bounded size; this runs
# them at FUZZ_EXAMPLES examples each, schemathesis's stateful phase included. Figures
# go to logs/contract-report.jsonl.
fuzz: compile
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-1000} FUZZ_PHASES=$${FUZZ_PHASES:-examples,coverage,fuzzing,stateful} \
		$(VENV)/bin/pytest tests/test_fuzz.py tests/test_contract_fuzz.py -s -q -o timeout=0

# pip-audit, from its own venv, over what .venv holds; skipped with one line when no
# vulnerability database is reachable.
audit: $(STAMP)
	$(PY) scripts/audit.py

# The lower bounds in pyproject.toml, installed exactly into .venv-min, and the tests run there.
test-min:
	$(PYTHON) scripts/lower_bounds.py

soak: compile
	SOAK_EVENTS=$${SOAK_EVENTS:-10000} CHAOS_REPORT=$(CURDIR)/logs/chaos-report.jsonl \
		$(VENV)/bin/pytest -m soak -s -q

# The pinned Claude Code CLI, installed once with npm (--ignore-scripts) into
# ${XDG_CACHE_HOME:-~/.cache}/hookclient-claude/<version>, outside the repo; prints its path.
# CLAUDE_BIN=/path/to/claude overrides. The e2e fixture goes through the same code.
claude: $(STAMP)
	$(PY) -m tests.claude.cli

# Only the tests marked `claude`: real `claude -p` sessions against a fake model server,
# with hookclient installed by `hookclient install`. They skip, with one line saying why,
# when npm or its registry cannot be reached. The CLI is installed first, outside pytest,
# so that a slow download does not count against the first test's timeout.
e2e: compile
	@$(PY) -m tests.claude.cli || echo "make e2e: no Claude Code CLI; the tests will say why"
	E2E_REPORT=$(CURDIR)/logs/e2e-report.jsonl $(VENV)/bin/pytest -m claude

# Every benchmark, each next to its yardsticks (about 6 minutes before logline and receiver
# were added, which take under a minute together); results go in BENCHMARKS.md.
bench: compile
	$(PY) bench/hook.py --runs 15
	$(PY) bench/daemon.py --events 2000 --latency 200 --backlog 20000
	$(PY) bench/autostart.py --runs 15
	$(PY) bench/logline.py
	$(PY) bench/receiver.py --events 2000 --rounds 3
	@$(PY) -m tests.claude.cli >/dev/null && $(PY) bench/session.py --runs 5 || echo "make bench: no Claude Code CLI, session bench skipped"

demo: compile
	$(PY) scripts/demo.py

# The README's dashboard pictures (docs/screenshots/), in Debian's Chromium, from the
# store a `make demo` run leaves behind.
screenshots: compile
	$(PY) scripts/demo.py --keep logs/demo-store >/dev/null
	$(PY) scripts/screenshots.py logs/demo-store

clean:
	rm -rf $(VENV) .venv-audit .venv-min .mypy_cache .pytest_cache .ruff_cache build *.egg-info
	find logs -type f ! -name .gitkeep -delete
