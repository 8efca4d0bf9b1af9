# The two commands (README): `make demo` runs the study on the bundled sample data, `make test` the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test bench gpu-check clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) study/run.py --output_dir runs/demo

test: setup
	$(PY) -m pytest -q -ra --durations=25 tests

bench: setup
	$(PY) bench/run_all.py

# Every CUDA path once, one table (bench/gpu_check.py). Runs with the project venv when there is
# one, else with the machine's own python3 (torch and torchvision are all it needs).
gpu-check:
	@if [ -x $(PY) ]; then $(PY) bench/gpu_check.py $(ARGS); else $(PYTHON) bench/gpu_check.py $(ARGS); fi

clean:
	rm -rf runs .pytest_cache
