# kws-edge: `make demo` (the pipeline on generated speech) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EDGE_EXTRAS ?= edge,serve
TOOLCHAIN_EXTRAS ?= train,teacher,dev
export OPENBLAS_NUM_THREADS ?= 1
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv test lint demo pipeline bench clean

# the device package (edge_runtime + the shipped model) and the toolchain (kws, train, convert,
# benchmarks: toolchain/pyproject.toml), both editable from this checkout
$(STAMP): pyproject.toml toolchain/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EDGE_EXTRAS)]" -e "./toolchain[$(TOOLCHAIN_EXTRAS)]"
	touch $@

venv: $(STAMP)

test: venv
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check .

demo: venv
	$(VENV)/bin/kws pipeline --demo

pipeline: venv
	$(VENV)/bin/kws pipeline --data $(DATA)

bench: venv
	$(PY) -m benchmarks.frontend --json

clean:
	rm -rf build *.egg-info toolchain/build toolchain/*.egg-info .pytest_cache

-include deploy/deploy.mk
