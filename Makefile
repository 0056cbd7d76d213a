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
	JQC_HYPOTHESIS_PROFILE=soak JQC_SIM_SOAK=1 $(PY) -m pytest -q -p no:cacheprovider -m "soak or not soak" tests/properties tests/sim

# bullmq (the Python port) is the peer the engine benchmark compares against. It lives in its own venv
# because it pins its own redis-py; hiredis too, as jqc has it, so both sides parse replies alike.
BULLMQ_VENV ?= .bench-venv-bullmq
BULLMQ_PIN ?= bullmq==3.4.4 hiredis==3.5.0

# If it cannot be installed, the benchmark still runs and says its bullmq row was skipped.
$(BULLMQ_VENV)/.installed:
	$(PYTHON) -m venv $(BULLMQ_VENV) && $(BULLMQ_VENV)/bin/python -m pip install -q $(BULLMQ_PIN) && touch $@ \
		|| echo "bullmq not installed into $(BULLMQ_VENV): its benchmark row will be skipped"

bench: $(VENV)/.installed $(BULLMQ_VENV)/.installed
	BULLMQ_PYTHON=$(BULLMQ_VENV)/bin/python $(PY) benchmarks/engine.py

bench-quick: $(VENV)/.installed $(BULLMQ_VENV)/.installed
	BULLMQ_PYTHON=$(BULLMQ_VENV)/bin/python $(PY) benchmarks/engine.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
