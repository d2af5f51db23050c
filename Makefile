# Rapport — the two commands a new machine needs: `make demo` and `make test`.

VENV   := .venv
BIN    := $(VENV)/bin
# The first Python 3.11+ on PATH.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
            command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
            && { echo $$p; break; }; done)

.PHONY: demo test lint bench install dev clean test-support

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Rapport needs Python 3.11 or newer; none found on PATH (set PYTHON=/path/to/python3.11)."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# --no-compile: Python compiles what is imported as it is first imported, rather than
# pip compiling every file of every dependency up front.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile -e .
	@touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
dev: $(VENV)/.dev-installed

# `make demo PLATFORM=mindbody` (acuity, cliniko, square): the loop against that platform's
# local stand-in from tests/sandboxes, which needs the development dependencies.
PLATFORM ?=
demo: $(if $(PLATFORM),dev,install)
	$(BIN)/python -m plugin demo $(if $(PLATFORM),--platform $(PLATFORM))

# Two processes (pytest-xdist), each with a private Redis; the fault matrix's scenarios
# of one database stay in one process, beside the stack they share.
test: dev test-support
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# axe-core, which the browser tests inject into pages; without npm those tests skip.
test-support:
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tests/support --no-audit --no-fund --loglevel=error \
	    || echo "axe-core could not be installed: the accessibility checks will be skipped"; \
	else echo "npm not found: the accessibility checks (axe-core) will be skipped"; fi

lint: dev
	$(BIN)/ruff check .

bench: dev
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis
