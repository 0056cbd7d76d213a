# The two commands a fresh clone needs: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint typecheck bench bench-quick soak clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m jqc demo

test: $(VENV)/.installed
	$(PY) -m ruff check jqc tests $(wildcard benchmarks)
	$(PY) -m mypy
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(VENV)/.installed
	$(PY) -m ruff check jqc tests $(wildcard benchmarks)
	$(PY) -m ruff format --check jqc tests $(wildcard benchmarks)

typecheck: $(VENV)/.installed
	$(PY) -m mypy

# Long runs, kept out of `make test`: many hypothesis examples on both backends.
soak: $(VENV)/.installed
	JQC_HYPOTHESIS_PROFILE=soak $(PY) -m pytest -q tests/properties

bench: $(VENV)/.installed
	$(PY) benchmarks/engine.py

bench-quick: $(VENV)/.installed
	$(PY) benchmarks/engine.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
