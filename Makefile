# Everything a fresh machine needs: Python 3.11 with venv. The virtualenv is built on first use.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: serve test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

serve: $(BIN)/.installed
	$(BIN)/scim-server serve

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

# The benchmark suite (bench/README.md): make bench, or make bench BENCH_ARGS=--quick
bench: $(BIN)/.installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check scim_server tests

clean:
	rm -rf $(VENV) .scim-data
