# Set-up and entry points. Each target builds its own virtual environment in
# $(VENV), installing torch==2.13.0 first (a CPU build on the project's machines)
# so that nothing pulls a multi-GB CUDA build, then the package with its extras.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: demo test test-min docs lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

# The same suite on the lowest versions pyproject.toml allows (.ci/minimum-versions.txt).
MIN_VENV ?= .venv-min
$(MIN_VENV)/.installed: pyproject.toml .ci/minimum-versions.txt
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MIN_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(MIN_VENV)/bin/python -m pip install --quiet -c .ci/minimum-versions.txt -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/quickstart.py

test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -n 2

test-min: $(MIN_VENV)/.installed
	$(MIN_VENV)/bin/python -m pytest -n 2

# HTML pages from docs/ (Markdown) and the docstrings (docs/api.rst); warnings fail it
$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $@

docs: $(VENV)/.docs-installed
	$(VENV)/bin/sphinx-build -q -W --keep-going -b html docs docs/_build/html

lint: $(VENV)/.installed
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) $(MIN_VENV) docs/_build docs/generated
