# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test install bench clean
NODE_TESTS := tests/node
NODE_STAMP := $(NODE_TESTS)/node_modules/.package-lock.json

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# The Node client tests' packages (the openai SDK, the Vercel AI SDK), exactly as locked; a no-op once installed.
$(NODE_STAMP): $(NODE_TESTS)/package.json $(NODE_TESTS)/package-lock.json
	npm ci --prefix $(NODE_TESTS) --no-audit --no-fund --loglevel=error

PORT ?= 8080

## Set up, migrate and serve on SQLite at 127.0.0.1:$(PORT) (default 8080; make run PORT=8090) with a demo organization.
run: $(STAMP)
	$(BIN)/aibroker demo --host 127.0.0.1 --port $(PORT)

## Set up (.venv, tests/node's packages) and run the whole test suite (PostgreSQL/Redis too when AIBROKER_TEST_* are set).
# The console's browser tests drive the distribution's Chromium (never a downloaded browser).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then apt-get install -y -q chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium); \
	else sudo apt-get install -y -q chromium; fi

test: $(STAMP) $(NODE_STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## The gateway benchmark (see bench/README.md).
bench: $(STAMP)
	$(PYTHON) bench/gateway.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(NODE_TESTS)/node_modules site .pytest_cache aibroker.db aibroker.db-wal aibroker.db-shm aibroker.db.migrate-lock
