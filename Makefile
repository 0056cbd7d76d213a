# The two commands a fresh clone needs: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint typecheck bench bench-quick bench-worker bench-peers soak clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m jqc demo

test: $(VENV)/.installed
	$(PY) -m ruff check jqc jqc_pytest tests $(wildcard benchmarks)
	$(PY) -m mypy
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(VENV)/.installed
	$(PY) -m ruff check jqc jqc_pytest tests $(wildcard benchmarks)
	$(PY) -m ruff format --check jqc jqc_pytest tests $(wildcard benchmarks)

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

# huey is the worker benchmark's other peer, in its own venv too (its redis-py pinned to jqc's).
HUEY_VENV ?= .bench-venv-huey
HUEY_PIN ?= huey==3.5.4 redis==8.1.0 hiredis==3.5.0

$(HUEY_VENV)/.installed:
	$(PYTHON) -m venv $(HUEY_VENV) && $(HUEY_VENV)/bin/python -m pip install -q $(HUEY_PIN) && touch $@ \
		|| echo "huey not installed into $(HUEY_VENV): its benchmark column will be skipped"

# The engine benchmark, then the worker benchmark (benchmarks/worker.py: jqc worker processes against
# bullmq and huey).
bench: $(VENV)/.installed $(BULLMQ_VENV)/.installed $(HUEY_VENV)/.installed
	BULLMQ_PYTHON=$(BULLMQ_VENV)/bin/python $(PY) benchmarks/engine.py
	BULLMQ_PYTHON=$(BULLMQ_VENV)/bin/python HUEY_PYTHON=$(HUEY_VENV)/bin/python $(PY) benchmarks/worker.py

bench-worker: $(VENV)/.installed $(BULLMQ_VENV)/.installed $(HUEY_VENV)/.installed
	BULLMQ_PYTHON=$(BULLMQ_VENV)/bin/python HUEY_PYTHON=$(HUEY_VENV)/bin/python $(PY) benchmarks/worker.py

bench-quick: $(VENV)/.installed $(BULLMQ_VENV)/.installed
	BULLMQ_PYTHON=$(BULLMQ_VENV)/bin/python $(PY) benchmarks/engine.py --quick

# Side by side with seven peers (benchmarks/peers.py): each peer pinned in its own venv under
# .bench-venvs/<peer> (arq needs redis-py < 6, so none can share). A peer that fails to install is
# reported by the benchmark with the reason; the others still run. Smoke run: `make bench-peers PEERS_ARGS=--quick`.
PEER_VENVS ?= .bench-venvs
PEER_PINS_bullmq ?= bullmq==3.4.4 hiredis==3.5.0
PEER_PINS_huey ?= huey==3.5.4 redis==8.1.0 hiredis==3.5.0
PEER_PINS_dramatiq ?= dramatiq[redis]==2.2.1 hiredis==3.5.0
PEER_PINS_arq ?= arq==0.28.0 'redis<6' hiredis==3.5.0
PEER_PINS_saq ?= saq[redis]==0.26.4 typing_extensions hiredis==3.5.0
PEER_PINS_celery ?= celery[redis]==5.7.0 hiredis==3.5.0
PEER_PINS_rq ?= rq==3.0.0 hiredis==3.5.0
PEERS := bullmq huey dramatiq arq saq celery rq
PEERS_ARGS ?=

$(PEER_VENVS)/%/.installed:
	rm -rf $(PEER_VENVS)/$* && $(PYTHON) -m venv $(PEER_VENVS)/$* \
		&& $(PEER_VENVS)/$*/bin/python -m pip install -q $(PEER_PINS_$*) && touch $@ \
		|| echo "$* not installed into $(PEER_VENVS)/$*: its rows will say so"

bench-peers: $(VENV)/.installed $(foreach p,$(PEERS),$(PEER_VENVS)/$(p)/.installed)
	$(PY) benchmarks/peers.py --venvs $(PEER_VENVS) $(PEERS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
