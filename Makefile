# Everything runs from a virtual environment cached under the user's cache
# directory, keyed on the dependency declarations, so a second run is fast.
PYTHON ?= python3
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/genai-audit
# the distributions of this checkout, installed editable; the environment is keyed on their declarations
# and on the checkout's path (an editable install points at the checkout it was made from)
DISTS := . processors $(patsubst %/pyproject.toml,%,$(wildcard instrumentation/*/pyproject.toml))
DEPS_HASH := $(shell (cat $(addsuffix /pyproject.toml,$(DISTS)) setup.py; echo $(CURDIR)) | sha256sum | cut -c1-12)
VENV ?= $(CACHE_DIR)/venv-$(DEPS_HASH)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast lint typecheck bench clean-venv es-up es-down

$(STAMP): $(addsuffix /pyproject.toml,$(DISTS)) setup.py
	@mkdir -p $(CACHE_DIR)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

setup: $(STAMP)
	@# a stable name for the current environment: the benchmarks' commands run $(CACHE_DIR)/dev/bin/python
	@ln -sfn $(VENV) $(CACHE_DIR)/dev

demo: setup
	$(BIN)/genai-audit demo

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

test-fast: setup
	$(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

test: lint typecheck test-sdk-versions
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The instrumentation tests against the oldest and the newest supported release of each SDK, each in an
# environment built once into $(CACHE_DIR)/sdk-envs, keyed on the pins and the project's declarations
# (tools/sdk_envs.py); tests of SDK features a release lacks are deselected and listed.
.PHONY: test-sdk-versions
test-sdk-versions: setup
	$(BIN)/python -m tools.sdk_envs --cache-dir $(CACHE_DIR)/sdk-envs

bench: setup
	$(BIN)/python bench/overhead.py

# A local single-node Elasticsearch (Maven and a JDK; built once into the cache directory):
# 8.19 by default (Java 17+), 9.x with ES_VERSION=9 (Java 21+). es-up prints the node's URL as
# its last line; es-down stops it. One node per version can run at a time, both at once.
ES_VERSION ?= 8

es-up: setup
	@$(BIN)/python -m tools.es_node up --major $(ES_VERSION)

es-down: setup
	@$(BIN)/python -m tools.es_node down --major $(ES_VERSION)

clean-venv:
	rm -rf $(VENV)
