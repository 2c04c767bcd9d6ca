# Every target uses the Python environment in .venv/ that `make bootstrap` creates.
VENV := .venv/bin
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: bootstrap lock collector demo demo-fast test test-unit test-docker lint up down status lab bench clean

bootstrap:            ## system packages, .venv, collector (idempotent)
	@bash scripts/bootstrap.sh

lock:                 ## re-pin requirements/*.lock from pyproject.toml (UPGRADE=1: newest)
	@bash scripts/lock.sh

collector:            ## build the collector (cached by the manifest hash)
	@bash scripts/build-collector.sh

demo: bootstrap       ## start the stack and run the guided tour (offline by default)
	@$(VENV)/workshop demo

demo-fast: bootstrap  ## the guided tour in a short form (CI)
	@$(VENV)/workshop demo --fast

test: bootstrap       ## every test suite against real components
	@bash scripts/run-tests.sh

test-unit: bootstrap  ## the in-process lane: grammar, checks, registries, typing (no stack)
	@$(VENV)/pytest -q -m "not stack" tests/unit tests/dataprime

test-docker: bootstrap ## the compose deployment on a private Docker engine (tests/docker/)
	@bash scripts/test-docker.sh

lint:
	@$(VENV)/ruff check . && $(VENV)/ruff format --check .

up: bootstrap
	@$(VENV)/workshop up

down:
	@$(VENV)/workshop down

status:
	@$(VENV)/workshop status

lab: bootstrap        ## JupyterLab on 127.0.0.1 with a token
	@$(VENV)/workshop lab serve

bench: bootstrap      ## the reproducible benchmark → docs/benchmarks.md
	@$(VENV)/workshop bench

clean:
	@$(VENV)/workshop down || true
	rm -rf data reports
