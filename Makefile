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
	$(PY) dataset/make_sample.py
	$(PY) dataset/data_preprocessing.py --sample --method gamma_noise
	$(PY) dataset/data_preprocessing.py --sample --method physics --save_raw
	$(PY) mask_rcnn/train.py --checkpoint_dir runs/demo/mask_rcnn --epoch 8 --eval_every 4 --lr_step_size 6
	$(PY) mask_rcnn/evaluate.py --weight_path runs/demo/mask_rcnn/last.pth --output_dir runs/demo/eval

test: setup
	$(PY) -m pytest -q -ra tests

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf runs .pytest_cache
