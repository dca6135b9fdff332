# Telportal: the two commands a newcomer needs are `make demo` and `make test`.
# Everything a test needs is installed here, never by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# Test workers (pytest-xdist). Most tests wait on real peers, servers and timers
# rather than compute, so two workers on two cores took the suite from 17.3 to 12.9 min.
TEST_WORKERS ?= 2

.PHONY: setup demo test check unit lint typecheck clean system-tools

# The protocol cores are compiled with mypyc in place (decision 0020); the manifest
# records the sources they were built from and is rebuilt when one of them changes.
CORE_BUILT   := src/telportal/compiled_sources.json
CORE_SOURCES := src/telportal/compiled.py setup.py \
                $(shell sed -n 's|^    "\(telportal/.*\.py\)",$$|src/\1|p' src/telportal/compiled.py)

setup: $(STAMP) $(CORE_BUILT) system-tools

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Telportal needs Python >= 3.11, found " + sys.version.split()[0])'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip 'setuptools>=77'  # the in-place build's
	TELPORTAL_INTERPRETED=1 $(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(CORE_BUILT): $(STAMP) $(CORE_SOURCES)
	@command -v gcc >/dev/null || { echo "gcc is needed to compile the protocol core (apt-get install gcc)"; exit 1; }
	$(BIN)/python setup.py --quiet build_ext --inplace --parallel 2

# Test-only tools from Debian. Installed when we are root on Debian; elsewhere the
# tests that need them fail loudly naming the missing tool.
system-tools:
	@sh scripts/install-system-tools.sh

demo: setup
	$(BIN)/telportal demo $(DEMO_ARGS)

check: setup
	$(BIN)/ruff check src tests bench setup.py
	$(BIN)/ruff format --check src tests bench setup.py
	$(BIN)/mypy

# Each run gets a temporary folder of its own. pytest's default, /tmp/pytest-of-USER,
# is shared by every run on the machine, and each run deletes all but the three newest
# folders there, a running suite's included: a CI run broke so while other tests ran.
# The suite runs the compiled protocol core; its own unit tests run once more
# interpreted, the way a checkout runs between an edit and the next `make setup`.
test: setup check
	@tmp=$$(mktemp -d /tmp/telportal-test.XXXXXX) && \
	  $(BIN)/python -m pytest --basetemp="$$tmp" -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS) && \
	  TELPORTAL_INTERPRETED=1 $(BIN)/python -m pytest --basetemp="$$tmp/interpreted" -q \
	    tests/unit/sip tests/unit/sdp tests/unit/rtp tests/unit/media tests/unit/test_record_inits.py \
	    tests/unit/test_calls_rows.py tests/unit/ivr; \
	  status=$$?; rm -rf "$$tmp"; exit $$status

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build src/*.egg-info $(CORE_BUILT)
	find src -name '*.so' -delete
