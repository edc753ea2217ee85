# Gridwhistle — one command per job. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
UV := .venv/bin/uv
STAMP := .venv/.installed
PROFILE ?= quick

.PHONY: help install browser run test test-unit test-connected lint asyncapi asyncapi-check bench chaos stack-up stack-down stack-status clean

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

stack-down: install ## stop what stack-up started (and the local cluster, when it runs)
	$(PY) -m tools.stack down --cluster

stack-status: install ## show each stack component and its health
	$(PY) -m tools.stack status

run: install ## the whole system on this machine: stack, four services (console included), bots, simulator, live console
	.venv/bin/gridwhistle run

test: install stack-up browser lint asyncapi-check ## everything: lint, AsyncAPI validation, unit, in-memory, connected and e2e tests (browser tests in headless Chromium)
	$(PY) -m pytest tests

test-unit: install ## unit and in-memory tests only (no services needed)
	$(PY) -m pytest tests -m "unit or inmemory"

lint: install ## ruff and mypy (strict)
	.venv/bin/ruff check shared services tests tools
	.venv/bin/ruff format --check shared services tests tools
	.venv/bin/mypy

ASYNCAPI_APPS := intake dispatch stats department

asyncapi: install ## write each service's AsyncAPI document (faststream docs gen) to docs/asyncapi/
	@mkdir -p docs/asyncapi
	@for app in $(ASYNCAPI_APPS); do \
		.venv/bin/faststream docs gen services.$$app.asyncapi:app -o docs/asyncapi/$$app.json >/dev/null || exit 1; \
		$(PY) -m tools.asyncapi.normalize docs/asyncapi/$$app.json && echo "docs/asyncapi/$$app.json"; \
	done

asyncapi-check: install ## generate the AsyncAPI documents into .state/asyncapi and validate them with @asyncapi/cli
	@mkdir -p .state/asyncapi
	@for app in $(ASYNCAPI_APPS); do \
		.venv/bin/faststream docs gen services.$$app.asyncapi:app -o .state/asyncapi/$$app.json >/dev/null || exit 1; \
		tools/asyncapi/cli.sh validate --fail-severity error .state/asyncapi/$$app.json \
			> .state/asyncapi/$$app.log 2>&1 || { cat .state/asyncapi/$$app.log; exit 1; }; \
		echo "$$app: valid AsyncAPI ($$(grep -c '"action": "send"' .state/asyncapi/$$app.json) send, $$(grep -c '"action": "receive"' .state/asyncapi/$$app.json) receive operations)"; \
	done

bench: install stack-up ## the system beside its raw ceilings (PROFILE=quick|full), printed and saved in .state/bench
	.venv/bin/gridwhistle bench --profile $(PROFILE)

chaos: install stack-up ## the county scenario on a local 3-node RabbitMQ cluster, 2 replicas of dispatch and stats, one fault per phase: jepsen-style table, lost and duplicated must be 0
	.venv/bin/gridwhistle chaos

clean: ## remove caches (keeps .venv and .state)
	rm -rf .pytest_cache .mypy_cache .ruff_cache
