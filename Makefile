# `make demo` and `make test` bootstrap .venv through `make setup` on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Exact CPU pair for this kind of machine: a local torch 2.13.0+cpu wheel shadows the
# registry's 2.13.0 and the registry's torchvision cannot import against it.
TORCH_PINS := torch==2.14.1 torchvision==0.29.2
STAMP := $(VENV)/.lnlkit-setup

.PHONY: setup demo test bench detect-bench lab clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e ".[notebooks,dev,compare,models]" $(TORCH_PINS)
	$(PY) -c "import torch, torchvision, lnlkit; print('lnlkit', lnlkit.__version__, 'torch', torch.__version__, 'torchvision', torchvision.__version__)"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/lnlkit reproduce --profile quick

test: setup
	$(PY) -m pytest -q tests

# the CPU benchmark suite (at most 10 minutes on 2 cores): bench/results/<machine>-<date>.md
bench: setup
	OMP_NUM_THREADS=1 $(PY) bench/run_suite.py

# label-error detection on the digits, every method + consensus + cleanlab, 3 seeds (bench/results/detect/)
detect-bench: setup
	OMP_NUM_THREADS=1 $(PY) bench/detect_digits.py

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

clean-venv:
	rm -rf $(VENV)
