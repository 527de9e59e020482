# The user's verbs. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
export ALEVOR_HOME ?= $(CURDIR)/.alevor
export DAGSTER_HOME ?= $(ALEVOR_HOME)/dagster
HOST ?= 127.0.0.1
PORT ?= 3000

WORKER_NAME ?= worker1
CONCURRENCY ?= 1
SELECT ?= *
# Test processes for `make test` and `make test-fast`: the end-to-end tests mostly wait (daemons, servers, workers), so
# one more than the cores keeps both busy.
TEST_WORKERS ?= 3
# One test handed out at a time, so the slow ones (collected first) spread over the workers.
PARALLEL := -n $(TEST_WORKERS) --maxschedchunk 1

PG_SAMPLE_URL ?= postgresql://postgres@127.0.0.1:5432/alevor_sample

.PHONY: install chromium instance demo test test-fast ui models pg-sample bench live clean worker daemon webserver backfill bench-scaleout

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev,zoo]'
	touch $@

install: $(BIN)/.installed

# The UI test drives Debian's chromium through Playwright's executablePath (no browser download).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# Dagster reads its instance settings from $DAGSTER_HOME/dagster.yaml: INSTANCE_YAML is copied there
# (deploy/dagster.yaml for several hosts). Creating the storage here keeps a webserver and a daemon
# from both initializing it; the lock, and the copy renamed into place, keep workers and a daemon
# started together from migrating at once or reading a half-copied file.
INSTANCE_YAML ?= dagster.yaml
instance: install
	mkdir -p "$(DAGSTER_HOME)"
	flock "$(DAGSTER_HOME)/.instance.lock" sh -c 'cp "$(INSTANCE_YAML)" "$(DAGSTER_HOME)/.dagster.yaml.new" && \
	  mv -f "$(DAGSTER_HOME)/.dagster.yaml.new" "$(DAGSTER_HOME)/dagster.yaml" && $(BIN)/dagster instance migrate >/dev/null'

## Materialize every asset for the demo range in one run, then print where the reports are.
demo: instance
	$(BIN)/python -m alevor_assets demo

## The whole test suite, slow end-to-end tests included (what CI runs).
test: install chromium
	$(BIN)/pytest -m "slow or not slow" $(PARALLEL)

## The quick suite: every layer once, without the slow end-to-end tests.
test-fast: install
	$(BIN)/pytest -m "not slow" $(PARALLEL)

## The Dagster UI on http://$(HOST):$(PORT) (127.0.0.1 unless you set HOST); Ctrl-C stops it all.
ui: instance
	exec $(BIN)/python -m alevor_assets.devserver -w workspace.yaml -h $(HOST) -p $(PORT)

## Every registered model version with its status and primary metric.
models: install
	$(BIN)/python -m alevor_assets models

## Benchmarks (bars from 10 M and 50 M trades; features on 2-second bars; training and scoring on 1 M rows; the model zoo on the demo's 1 h direction rows): prints tables.
bench: install
	$(BIN)/python -m bench.bars
	$(BIN)/python -m bench.features
	$(BIN)/python -m bench.train
	$(BIN)/python -m bench.score
	$(BIN)/python -m bench.zoo

## Live alerts from the PostgreSQL source (ALEVOR_SOURCE=postgres, ALEVOR_PG_URL) or files (ALEVOR_SOURCE=files, ALEVOR_FILES); Ctrl-C stops it.
live: instance
	exec $(BIN)/python -m alevor_assets live

## Scaling out (README "Scaling out"): with ALEVOR_EXECUTOR=celery and ALEVOR_DAGSTER_PG_URL set, a
## Celery worker (WORKER_NAME, CONCURRENCY steps at once), the daemon, the webserver, and a backfill
## of START..END (SELECT: a Dagster asset selection) that the daemon launches and the workers run.
worker: instance
	exec $(BIN)/python -m alevor_assets worker --name "$(WORKER_NAME)" --concurrency $(CONCURRENCY)

daemon: instance
	exec $(BIN)/dagster-daemon run -w workspace.yaml

webserver: instance
	exec $(BIN)/dagster-webserver -w workspace.yaml -h $(HOST) -p $(PORT)

backfill: instance
	@[ -n "$(START)" ] && [ -n "$(END)" ] || { echo "usage: make backfill START=2024-01-01 END=2024-01-08 [SELECT='raw_trades*']"; exit 2; }
	$(BIN)/python -m alevor_assets backfill --start $(START) --end $(END) --select '$(SELECT)'

## An 8-day backfill of bars and features: one in-process run, then 1 and 2 Celery workers (prints a table).
bench-scaleout: install
	$(BIN)/python -m bench.scaleout

## Load the demo days of the synthetic market into PostgreSQL Token/Trade tables (database created if missing).
pg-sample: install
	$(BIN)/python -m alevor_assets load-sample --url "$${ALEVOR_PG_URL:-$(PG_SAMPLE_URL)}"

clean:
	rm -rf "$(ALEVOR_HOME)" $(VENV)
