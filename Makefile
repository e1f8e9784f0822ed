# nlu-ci — the two commands a newcomer needs are `make run` and `make test`; both install what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
MODELS_DIR ?= var/models
DATA ?= data/sample/nlu.json
PYTEST_ARGS ?=

.PHONY: help install install-system run test test-core lint clean

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install:  ## create $(VENV) with pinned dependencies, rasa_nlu 0.15.1 (--no-deps) and nlu-ci (idempotent)
	@scripts/install.sh $(VENV) --dev --editable

install-system:  ## Debian packages for the tests: prometheus (promtool) and prometheus-pushgateway
	@scripts/install-system.sh

run: install  ## run the job once on the bundled sample data, models under ./var/models (run twice: skipped)
	NLU_CI_MODELS_DIR=$${NLU_CI_MODELS_DIR:-$(MODELS_DIR)} NLU_CI_DATA=$${NLU_CI_DATA:-$(DATA)} \
	  $(VENV)/bin/nlu-ci run

test: install install-system  ## every test (real rasa_nlu training, real Pushgateway/Prometheus, loopback servers)
	$(PY) -m pytest $(PYTEST_ARGS)

test-core: install  ## only the core job tests
	$(PY) -m pytest tests/core $(PYTEST_ARGS)

lint: install  ## ruff on the Python code
	$(VENV)/bin/ruff check src tests

clean:  ## remove the local model store and caches (not the venv)
	rm -rf var .pytest_cache .ruff_cache
