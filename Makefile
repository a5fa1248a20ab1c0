# Everything a fresh machine needs: Python 3.11 with venv. The virtualenv is built on first use.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: serve test lint bench conformance clean system-packages

# What serving needs: the runtime dependencies, the embedded store, and the idp-sim and
# scim-conformance commands (faker); none of the test, lint or benchmark tools.
$(BIN)/.installed-serve: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,idp-sim]'
	touch $@

# Everything the tests, lint, benchmarks and conformance runs need (a superset of the above).
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(BIN)/.installed-serve

serve: $(BIN)/.installed-serve
	$(BIN)/scim-server serve

# Most of the suite's time is spent waiting on real processes (servers, stores, Chromium), so
# three workers keep two cores busy; each worker starts its own embedded store. Work stealing
# keeps the long supervision tests from all landing at the end of one worker.
TEST_WORKERS ?= 3

test: $(BIN)/.installed system-packages
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

# The real-browser SSO tests drive Debian's Chromium and the benchmark's outside load generator is
# Debian's wrk (never downloaded builds): both are installed once, when one is missing.
SYSTEM_PACKAGES := chromium chromium-driver fonts-liberation wrk

system-packages:
	@{ command -v chromium && command -v wrk; } >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$(SYSTEM_PACKAGES); \
	} || { echo "needs Debian's $(SYSTEM_PACKAGES): apt-get install them" >&2; exit 1; }

# The benchmark suite (bench/README.md): make bench, or make bench BENCH_ARGS=--quick
bench: $(BIN)/.installed system-packages
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.against_peer $(filter --quick,$(BENCH_ARGS))
	$(BIN)/python -m bench.tenants $(filter --quick,$(BENCH_ARGS))
	$(BIN)/python -m bench.stall $(filter --quick,$(BENCH_ARGS))
	$(BIN)/python -m bench.command_counts

# Our server on a throwaway embedded store, two tenants, every conformance suite; writes
# conformance-report.html/.xml/.json here. CONFORMANCE_ARGS e.g. --large, --suite flows.
conformance: $(BIN)/.installed
	$(BIN)/python -m conformance.local $(CONFORMANCE_ARGS)

# The house rules CI enforces beside the tests: ruff's lint and format check, mypy (strict) and
# the layer contracts of import-linter (both configured in pyproject.toml).
SOURCES := scim_server tests bench idp_sim conformance samlkit toolkit_cli examples

lint: $(BIN)/.installed
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .scim-data
