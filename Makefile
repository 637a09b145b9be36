# Every target installs what it needs (idempotently) into .venv and node_modules first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed

.PHONY: install run demo test bench lint clean

install: $(PY_STAMP) $(NODE_STAMP) $(INFRA_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# checkov + pycep-parser for tests/infra, apart from .venv (their pins clash with the dev set)
$(INFRA_STAMP): requirements-infra.txt
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## make run: the whole local stack on the demo data set, the connector on http://127.0.0.1:7071/api
run: install
	$(PY) -m emulators.stack run

## make demo: a one-shot scripted scenario on a fresh local stack; ends with a report
demo: install
	$(PY) -m emulators.stack demo

## make test: every test, including those that start the local stack (once per session)
test: install
	$(PY) -m pytest -m "not external"

## make bench: benchmarks on the local stack; results go to docs/benchmarks.md
bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(INFRA_VENV) node_modules .local .pytest_cache .mypy_cache .ruff_cache
