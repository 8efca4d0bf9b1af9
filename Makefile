# The two commands (README): `make demo` runs the study on the bundled sample data, `make test` the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test bench clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) study/run.py --output_dir runs/demo

test: setup
	$(PY) -m pytest -q -ra tests

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf runs .pytest_cache
