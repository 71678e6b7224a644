# The two quickstart commands (see README.md), over a local virtual environment in .venv/.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint bench docs docs-site mutation clean

demo: $(VENV)/.installed-runtime  ## set up (the runtime dependencies only), then train the embedded default (digits convnet, offline)
	$(BIN)/dlrun train configs/quickstart.yaml

test: $(VENV)/.installed-dev  ## set up (with the dev extra), then run the whole test suite (slow end-to-end tests included)
	$(BIN)/python -m pytest

test-fast: $(VENV)/.installed-dev  ## the suite without the slow end-to-end tests
	$(BIN)/python -m pytest -m "not slow"

lint: $(VENV)/.installed-dev  ## ruff's rules and formatter check (as tests/test_architecture.py runs them), then mypy over src/dlrun ([tool.mypy] in pyproject.toml)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/python -m mypy

format: $(VENV)/.installed-dev  ## rewrite the code in ruff's format (what make lint checks)
	$(BIN)/ruff format src tests benchmarks tools

bench: $(VENV)/.installed-dev  ## the benchmark suite, quick mode (see BENCHMARKS.md)
	$(BIN)/python benchmarks/run_all.py --quick

mutation: $(VENV)/.installed-dev  ## mutmut 3 over the modules that hold promises, fast tests; prints "killed X of Y" (not in CI; MODULES=dlrun.atomic for one)
	$(BIN)/python tools/mutation.py $(MODULES)

docs: $(VENV)/.installed-dev  ## regenerate the generated pages: JSON schema, docs/config.md, docs/cli.md (the Typer app), docs/architecture.md
	$(BIN)/dlrun config schema --out schema/dlrun-config.schema.json
	$(BIN)/dlrun config docs --out docs/config.md
	$(BIN)/python tools/cli_reference.py
	$(BIN)/python -m tests.test_architecture

docs-site: docs  ## build the documentation site into site/ (strict: broken links fail); preview with .venv/bin/mkdocs serve
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Two markers: `make demo` installs what dlrun needs to run (pip install -e .); `make test` adds the dev
# extra on top (JAX, Ray, MLflow, ONNX, Playwright, pytest...). pip's own output shows the progress.
$(VENV)/.installed-runtime: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "dlrun needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar on --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-runtime
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) build site src/*.egg-info .pytest_cache .mypy_cache mutants
