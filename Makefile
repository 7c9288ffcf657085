# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SHARED_DATA := $(abspath ../shared/data)
export LOWRES_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)
export HF_HUB_DISABLE_TELEMETRY := 1
export PYTHONUNBUFFERED := 1

.PHONY: install demo demo-cpu test test-fast bench clean-outputs

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# The kernel lives inside the venv (--sys-prefix) so two checkouts never overwrite each other's kernel.
	$(PY) -m ipykernel install --sys-prefix --name lowres --display-name "Python (lowres)"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/lowres demo --profile smoke

demo-cpu: install
	$(VENV)/bin/lowres demo --profile cpu

# Two workers: kernels start and import single-threaded, so two at a time use both cores; one torch thread each
# avoids oversubscribing them. nbval re-executes every notebook with its defaults (the offline smoke point).
# Results of nbval's runs go to a temp dir; tests make their own.
test: install
	-bash scripts/install_browser.sh
	LOWRES_OUTPUTS=$$(mktemp -d) OMP_NUM_THREADS=1 $(VENV)/bin/pytest -q -p no:cacheprovider -n 2 --dist loadfile \
	  --durations=15 --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg tests notebooks

test-fast: install
	$(VENV)/bin/pytest -q -m "not notebook and not browser" tests

clean-outputs:
	find outputs -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
