# carryover — `make run` (local demo) and `make test` (whole suite) work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tool venv of `make helm`: helm/validate.py creates it from helm/requirements.txt.
HELM_VENV := .venv-helm
PUBSUB_EMULATOR := /usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator

.PHONY: run test test-unit test-integration lint catalog catalog-check bench helm install system-deps clean stack-up stack-down

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip check
	touch $(STAMP)

install: system-deps $(STAMP)  ## virtualenv + every Python and Debian dependency

system-deps:  ## Java and Google's Pub/Sub emulator for the local stack, Chromium for the browser test (Debian packages)
	@if ! command -v java >/dev/null || [ ! -x $(PUBSUB_EMULATOR) ]; then \
	  echo "installing Java / Pub/Sub emulator (Debian packages)"; \
	  apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless google-cloud-cli-pubsub-emulator \
	  || { echo "could not install google-cloud-cli-pubsub-emulator: add Google Cloud's apt repository, then re-run"; exit 1; }; \
	fi
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Chromium (Debian package; Playwright drives it, never \`playwright install\`)"; \
	  apt-get update -qq && apt-get install -y -qq chromium \
	  || { echo "could not install chromium (Debian package)"; exit 1; }; \
	fi

run: install  ## local demo: stack + demo tenants + worker + legacy traffic; Ctrl-C stops everything
	$(VENV)/bin/carryover run

test: install  ## the whole suite: unit, integration and end-to-end on the real local stack
	$(PY) -m pytest -q -p no:cacheprovider tests

test-unit: install
	$(PY) -m pytest -q tests/unit

lint: install  ## ruff + mypy (strict on app/, agents/, models/) + generated-code freshness
	$(VENV)/bin/ruff check app agents models tests bench
	$(VENV)/bin/mypy app agents models
	$(PY) -m app.catalog.codegen --check
	$(PY) -m models.legacy.regen --check

catalog: install  ## regenerate models/canonical from catalog/, lint the catalog, write docs/catalog
	$(PY) -m app.catalog.codegen
	$(VENV)/bin/carryover catalog lint
	$(VENV)/bin/carryover catalog docs --out docs/catalog

bench: install  ## benchmarks (each prints its table with the comparison measured in the same run)
	$(PY) -m bench.ingest_bench
	$(PY) -m bench.normalize_bench
	$(PY) -m bench.webhooks_bench

helm:  ## lint, render and schema-check the chart (Helm v4 library via helm-sdkpy, kubernetes-validate; helm/README)
	HELM_VENV=$(HELM_VENV) $(PYTHON) helm/validate.py

stack-up: install
	$(VENV)/bin/carryover stack up

stack-down:
	$(VENV)/bin/carryover stack down

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
