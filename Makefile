# Gridwhistle — one command per job. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
UV := .venv/bin/uv
STAMP := .venv/.installed
PROFILE ?= quick

.PHONY: help install browser run test test-unit test-connected lint bench chaos stack-up stack-down stack-status clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock package.json package-lock.json
	@test -x $(PY) || python3 -m venv .venv
	@test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv==0.13.8
	$(UV) pip sync --quiet --python $(PY) requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	npm ci --silent --no-audit --no-fund  # the console's htmx (package-lock.json) into node_modules/
	@touch $(STAMP)

install: $(STAMP) ## create or update .venv from the lock file

browser: install ## Chromium and chromedriver from Debian (apt) for the browser tests, when missing
	$(PY) -m tools.browser

lock: ## re-resolve requirements.lock from pyproject.toml
	$(UV) pip compile --quiet --python $(PY) pyproject.toml --extra dev -o requirements.lock

stack-up: install ## install (if missing) and start RabbitMQ, the SecantusDB store and Prometheus on 127.0.0.1
	$(PY) -m tools.stack up

stack-down: install ## stop what stack-up started
	$(PY) -m tools.stack down

stack-status: install ## show each stack component and its health
	$(PY) -m tools.stack status

run: install ## the whole system on this machine: stack, four services (console included), bots, simulator, live console
	.venv/bin/gridwhistle run

test: install stack-up browser lint ## everything: lint, unit, in-memory, connected and e2e tests
	$(PY) -m pytest tests

test-unit: install ## unit and in-memory tests only (no services needed)
	$(PY) -m pytest tests -m "unit or inmemory"

lint: install ## ruff and mypy (strict)
	.venv/bin/ruff check shared services tests tools
	.venv/bin/ruff format --check shared services tests tools
	.venv/bin/mypy

bench: install stack-up ## the system beside its raw ceilings (PROFILE=quick|full), printed and saved in .state/bench
	.venv/bin/gridwhistle bench --profile $(PROFILE)

chaos: install stack-up ## kill each service, restart store and broker under load; lost and counted twice must be 0
	.venv/bin/gridwhistle chaos

clean: ## remove caches (keeps .venv and .state)
	rm -rf .pytest_cache .mypy_cache .ruff_cache
