# The two commands: `make run` (server on the embedded SQLite default) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# pytest-xdist workers for `make test`/`make pytest` (`PYTEST_WORKERS=0` runs in one process).
PYTEST_WORKERS ?= auto

.PHONY: run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "bccd needs Python 3.11+")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/bccd db upgrade
	exec $(BIN)/bccd serve

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	@command -v chromedriver >/dev/null 2>&1 || echo "make: chromium/chromedriver not found: the browser tests (tests/web/test_browser.py) will be skipped (apt-get install -y chromium chromium-driver)"
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist worksteal

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
