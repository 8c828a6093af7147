# flowgraph: two commands set everything up.
#   make demo   creates .venv, installs flowgraph, runs an example workflow offline
#   make test   creates .venv, installs the dev extras, runs the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean docs-images

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# the engine's bytecode is compiled at install, as pip compiles an installed package's: where
# PYTHONDONTWRITEBYTECODE is set, every start would otherwise compile it again (about 50 ms)
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m compileall -q engine nodes
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q engine nodes
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(BIN)/flowgraph validate examples/branching.json
	$(BIN)/flowgraph run examples/branching.json --input mode=quality --input prompt="a red fox"
	$(BIN)/flowgraph run examples/fan-out.json
	$(BIN)/flowgraph run examples/storyboard.export.json --auto-approve
	$(BIN)/flowgraph run examples/creative-app.json --input subject="a lighthouse at dusk" \
		--input style=watercolor --decisions examples/creative-app.decisions.json

test: $(VENV)/.installed-dev
	bash tests/ensure-package.sh chromium 'command -v chromium' 'the browser test'
	bash tests/ensure-package.sh postgresql 'ls /usr/lib/postgresql/*/bin/initdb' 'the PostgreSQL tests'
	$(BIN)/ruff check engine nodes tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check engine nodes tests benchmarks
	$(BIN)/mypy

# Prefect 3 pins an older FastAPI than flowgraph's server uses: it gets an environment of its own
PREFECT_VENV := .venv-prefect

$(VENV)/.installed-bench: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(PYTHON) -m venv $(PREFECT_VENV)
	$(PREFECT_VENV)/bin/python -m pip install --quiet 'prefect>=3'
	touch $@

bench: $(VENV)/.installed-bench
	FLOWGRAPH_BENCH_PREFECT_PYTHON=$(CURDIR)/$(PREFECT_VENV)/bin/python \
		$(BIN)/python -m benchmarks --plot benchmarks/scaling.png

clean:
	rm -rf $(VENV) $(PREFECT_VENV) .pytest_cache build *.egg-info

# the screenshots in docs/ and benchmarks/console-page.json, taken by the browser tests
docs-images: $(VENV)/.installed-dev
	bash tests/ensure-package.sh chromium 'command -v chromium' 'the browser test'
	FLOWGRAPH_UPDATE_DOCS=1 $(BIN)/python -m pytest -q tests/test_console.py tests/test_report_browser.py
