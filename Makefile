# nq-tracker: `make demo` runs the main job, `make test` runs the tests.
SHELL := /bin/bash
PY := uv run --frozen python
export PATH := $(HOME)/.local/bin:$(PATH)

.PHONY: setup up down status demo test test-unit test-integration test-e2e faults clean

setup:  ## install what is missing: Debian tools, uv, the locked venv, Kafka and FerretDB
	@bash deploy/local/setup.sh

up: setup  ## start Kafka, FerretDB, a mail sink and the four services; URLs in .local/stack.env
	@$(PY) -m deploy.local.stack up

down:  ## stop exactly what `make up` started
	@if [ -x .venv/bin/python ]; then .venv/bin/python -m deploy.local.stack down; fi

status:
	@$(PY) -m deploy.local.stack status

# The demo replays the first quarter of 2021: the services' clock is pinned to 19 March 2021,
# after the units' reports fell due (16 March) and the last late one arrived (18 March), the day
# the Office approves the quarter's report.
demo: export NQT_CLOCK_FIXED ?= 2021-03-19T09:00:00+07:00
demo: up  ## a realistic Hanoi scenario through the HTTP API; the status table lands in out/
	@$(PY) -m deploy.local.demo

test: setup  ## unit, integration and e2e tests (starts its own Kafka and FerretDB unless NQT_* point at some)
	@$(PY) -m pytest -q -p no:cacheprovider

# The fault-injection suite at full length (the short versions run in `make test`): the
# summary table at the end, the same rows in out/faults.json.
faults: setup  ## kill -9, broker and database crashes, a misbehaving network, poison, rebalances; nothing lost or doubled
	@NQT_FAULTS=long $(PY) -m pytest -q -p no:cacheprovider tests/faults

test-unit: setup
	@$(PY) -m pytest -q -p no:cacheprovider tests/unit

clean: down
	rm -rf .local out

.PHONY: bench
# Figures, not tests: each script prints min/median/max over repeated runs next to a raw baseline
# measured in the same run, and merges its keys into bench/results/latest.json. Long; never in `make test`
# (tests/integration/test_bench_quick.py runs each script in a tiny configuration instead).
bench: setup  ## benchmarks: ingest throughput, freshness, pipeline, replay, reports, web pages (tens of minutes)
	@$(PY) bench/ferretdb.py --repeat 3
	@$(PY) bench/ingest.py --duration 10 --repeat 3
	@$(PY) bench/freshness.py --rate 500 --duration 10 --repeat 3 --drain 60
	@$(PY) bench/pipeline.py --scale 0.05 --repeat 2 --timeout 1200
	@$(PY) bench/replay.py --scale 0.05 --repeat 1
	@$(PY) bench/reports.py --scale 1 --repeat 1
	@$(PY) bench/webview.py --scale 1 --requests 30
