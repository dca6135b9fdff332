# Telportal: the two commands a newcomer needs are `make demo` and `make test`.
# Everything a test needs is installed here, never by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup demo test check unit lint typecheck clean system-tools

setup: $(STAMP) system-tools

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Telportal needs Python >= 3.11, found " + sys.version.split()[0])'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Test-only tools from Debian. Installed when we are root on Debian; elsewhere the
# tests that need them fail loudly naming the missing tool.
system-tools:
	@sh scripts/install-system-tools.sh

demo: setup
	$(BIN)/telportal demo $(DEMO_ARGS)

check: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# Each run gets a temporary folder of its own. pytest's default, /tmp/pytest-of-USER,
# is shared by every run on the machine, and each run deletes all but the three newest
# folders there, a running suite's included: a CI run broke so while other tests ran.
test: setup check
	@tmp=$$(mktemp -d /tmp/telportal-test.XXXXXX) && \
	  $(BIN)/python -m pytest --basetemp="$$tmp" $(PYTEST_ARGS); \
	  status=$$?; rm -rf "$$tmp"; exit $$status

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build src/*.egg-info
