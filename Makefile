# The two commands a fresh clone needs: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Test processes: more than the 2 cores of the reference machine, since many tests wait on Redis
# or on child processes rather than compute.
TEST_WORKERS ?= 3

.PHONY: demo test docs notebooks screenshots bench-dashboard bench-cluster lint typecheck bench bench-quick bench-engine bench-worker bench-peers soak clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m jqc demo

test: $(VENV)/.installed
	$(PY) -m ruff check jqc jqc_pytest tests notebooks $(wildcard benchmarks)
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mkdocs build --strict -q -d "$$(mktemp -d)"
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist worksteal --durations=15

# The documentation site (docs/ and the API reference from the docstrings) into site/, warnings as errors.
docs: $(VENV)/.installed
	$(VENV)/bin/mkdocs build --strict

lint: $(VENV)/.installed
	$(PY) -m ruff check jqc jqc_pytest tests notebooks $(wildcard benchmarks)
	$(PY) -m ruff format --check jqc jqc_pytest tests notebooks $(wildcard benchmarks)

typecheck: $(VENV)/.installed
	$(PY) -m mypy

# The capacity-planning notebooks at full size: refreshes the figures under docs/images (the README shows
# them). `make test` runs the same notebooks with smaller parameters (tests/notebooks).
notebooks: $(VENV)/.installed
	$(PY) notebooks/run.py

# The pictures of the dashboard (docs/images/dashboard.png for the README, dashboard-schedules.png), taken with the browser tests'
# setup (tests/dashboard/browser.py): the system Chromium, at /usr/bin/chromium or $$JQC_CHROMIUM.
screenshots: $(VENV)/.installed
	$(PY) -m tests.dashboard.screenshot docs/images/dashboard.png

# Time per dashboard page on a 1,000,000-job queue (benchmarks/dashboard.py; Redis at 127.0.0.1:6379
# db 4, which it empties; BENCH_ARGS=--url memory:// for the embedded backend).
bench-dashboard: $(VENV)/.installed
	$(PY) benchmarks/dashboard.py $(BENCH_ARGS)

# adds/s and processed/s with many queues on one plain Redis and on Redis Clusters of 1, 2 and 3
# masters, side by side in one run (benchmarks/cluster.py: it starts its own servers on free
# loopback ports in 7112-7199 and kills them at the end; 3 runs of 20,000 jobs over 64 queues, a few
# minutes), results in benchmarks/results/cluster-latest.{json,md}. BENCH_ARGS=--quick: one small run;
# BENCH_ARGS="--baseline DIR": the single server measured with another jqc source tree too, same run.
bench-cluster: $(VENV)/.installed
	$(PY) benchmarks/cluster.py $(BENCH_ARGS)

# Long runs, kept out of `make test`: many hypothesis examples on both backends.
soak: $(VENV)/.installed
	JQC_HYPOTHESIS_PROFILE=soak JQC_SIM_SOAK=1 $(PY) -m pytest -q -p no:cacheprovider -m "soak or not soak" tests/properties tests/sim

# Benchmarks. `make bench` is the side-by-side comparison of the issue: jqc against bullmq, huey,
# dramatiq, arq, saq, celery and rq on the Redis at 127.0.0.1:6379 (db 3, which it empties), each peer
# pinned in its own venv under .bench-venvs/<peer> (arq needs redis-py < 6, so none can share one),
# 3 runs, results in benchmarks/results/peers-latest.{json,md}. A peer that fails to install is
# reported by the benchmark with the reason; the others still run. `make bench-quick` is a smoke run
# (1 run, small N). `make bench-engine` (benchmarks/engine.py: the engine calls against bullmq's,
# one process each) and `make bench-worker` (benchmarks/worker.py: worker processes against bullmq
# and huey) are the narrower benchmarks; all three use the same venvs.
PEER_VENVS ?= .bench-venvs
PEER_PINS_bullmq ?= bullmq==3.4.4 hiredis==3.5.0
PEER_PINS_huey ?= huey==3.5.4 redis==8.1.0 hiredis==3.5.0
PEER_PINS_dramatiq ?= dramatiq[redis]==2.2.1 hiredis==3.5.0
PEER_PINS_arq ?= arq==0.28.0 'redis<6' hiredis==3.5.0
PEER_PINS_saq ?= saq[redis]==0.26.4 typing_extensions hiredis==3.5.0
PEER_PINS_celery ?= celery[redis]==5.7.0 hiredis==3.5.0
PEER_PINS_rq ?= rq==3.0.0 hiredis==3.5.0
PEERS := bullmq huey dramatiq arq saq celery rq
PEER_INSTALLS := $(foreach p,$(PEERS),$(PEER_VENVS)/$(p)/.installed)
BENCH_ARGS ?=
PEERS_ARGS ?=

$(PEER_VENVS)/%/.installed:
	rm -rf $(PEER_VENVS)/$* && $(PYTHON) -m venv $(PEER_VENVS)/$* \
		&& $(PEER_VENVS)/$*/bin/python -m pip install -q $(PEER_PINS_$*) && touch $@ \
		|| echo "$* not installed into $(PEER_VENVS)/$*: its rows will say so"

# The full table, as published in the README (benchmarks/peers.py defaults: 3 runs, N = 5,000,
# 100,000 waiting jobs for bytes, 500 latency samples per run).
bench: $(VENV)/.installed $(PEER_INSTALLS)
	$(PY) benchmarks/peers.py --venvs $(PEER_VENVS) $(BENCH_ARGS) $(PEERS_ARGS)

bench-peers: bench

bench-quick: $(VENV)/.installed $(PEER_INSTALLS)
	$(PY) benchmarks/peers.py --venvs $(PEER_VENVS) --quick $(BENCH_ARGS) $(PEERS_ARGS)

bench-engine: $(VENV)/.installed $(PEER_VENVS)/bullmq/.installed
	BULLMQ_PYTHON=$(PEER_VENVS)/bullmq/bin/python $(PY) benchmarks/engine.py $(BENCH_ARGS)

bench-worker: $(VENV)/.installed $(PEER_VENVS)/bullmq/.installed $(PEER_VENVS)/huey/.installed
	BULLMQ_PYTHON=$(PEER_VENVS)/bullmq/bin/python HUEY_PYTHON=$(PEER_VENVS)/huey/bin/python \
		$(PY) benchmarks/worker.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
