# Two commands for a fresh machine (README):  make run   and   make test
# Both create the virtual environment and install what they need.
PYTHON ?= python3
VENV ?= .venv
DJANGO ?=
PYTEST_ARGS ?=
DEVIDP := example/devidp

.PHONY: run test lint bench clean install system-deps screenshots

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 needed"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]' $(if $(DJANGO),'$(DJANGO)')
	touch $@

$(DEVIDP)/node_modules/.installed: $(DEVIDP)/package-lock.json
	npm ci --prefix $(DEVIDP) --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed $(DEVIDP)/node_modules/.installed

system-deps:
	bash .ci/install-system-deps

## Run the example site with the local development identity provider.
run: install
	VENV=$(VENV) bash example/run.sh

## Run the whole test suite (unit, hypothesis, forged provider, real provider, Chromium).
test: system-deps install
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

## Regenerate README's screenshots (docs/screenshots/*.png) from the browser journey.
screenshots: system-deps install
	UPDATE_README_SCREENSHOTS=1 $(VENV)/bin/python -m pytest tests/e2e/journey -q $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf $(VENV) $(DEVIDP)/node_modules .pytest_cache .hypothesis
