# Everything runs from a virtual environment cached under the user's cache
# directory, keyed on the dependency declarations, so a second run is fast.
PYTHON ?= python3
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/genai-audit
DEPS_HASH := $(shell cat pyproject.toml setup.py | sha256sum | cut -c1-12)
VENV ?= $(CACHE_DIR)/venv-$(DEPS_HASH)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast lint typecheck bench clean-venv es-up es-down

$(STAMP): pyproject.toml setup.py
	@mkdir -p $(CACHE_DIR)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)
	@# a stable name for the current environment: the benchmarks' commands run $(CACHE_DIR)/dev/bin/python
	@ln -sfn $(VENV) $(CACHE_DIR)/dev
	@# editable installs point at the checkout they were made from; re-point when it moved. Asked of
	@# genai_audit.processors: genai_audit itself would be found in the current directory whatever the install
	@$(BIN)/python -c "import genai_audit.processors as p, os, sys; sys.exit(os.path.dirname(os.path.dirname(p.__file__)) != os.getcwd())" \
		|| $(BIN)/python -m pip install --quiet --no-deps -e .
	@# the C extensions, built in place: an install made for an earlier checkout at this path has none
	@# for this one, or older ones (whole seconds: the build copies them with their times truncated).
	@# Optional: without a compiler the detectors run their Python loop, content is encoded by json and
	@# every chat request is read in Python
	@$(BIN)/python -c "import importlib, os, sys; \
		built = {'genai_audit.processors._collect': 'processors/_collect.c', 'genai_audit._jsonenc': 'genai_audit/_jsonenc.c', \
			'genai_audit.instrumentation.openai._fastread': 'instrumentation/openai/_fastread.c'}; \
		sys.exit(any(int(os.path.getmtime(importlib.import_module(m).__file__)) < int(os.path.getmtime(c)) for m, c in built.items()))" \
		2>/dev/null || $(BIN)/python -W ignore setup.py -q build_ext --inplace

demo: setup
	$(BIN)/genai-audit demo

lint: setup
	$(BIN)/ruff check .

# mypy cannot follow the editable install's import hook, so it checks the
# package as it is laid out in a wheel.
typecheck: setup
	@rm -rf build/typecheck
	@$(BIN)/python setup.py -q build_py --build-lib build/typecheck 2>/dev/null
	cd build/typecheck && $(BIN)/mypy --config-file ../../pyproject.toml genai_audit

test-fast: setup
	$(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

test: lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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
