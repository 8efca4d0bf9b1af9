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

# The demo also shows the study taking what another lab brings (docs/outside_results.md): gamma's
# enhancement of the sample's low-light val images, made outside the study, comes back as an outside
# row (it scores exactly as the study's own gamma row), and zero_dce+ft is the normal-light detector
# fine-tuned on Zero-DCE++'s enhanced train images (the field's second protocol).
DEMO_OUTSIDE := runs/demo_outside/gamma

demo: setup
	$(PY) dataset/enhance.py --method gamma --output_dir $(DEMO_OUTSIDE)
	$(PY) study/run.py --output_dir runs/demo --retrain_on_enhanced zero_dce \
	    --external_images outside_gamma:gamma_noise=$(DEMO_OUTSIDE)

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
