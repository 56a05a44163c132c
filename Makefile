# kws-edge: `make demo` (the pipeline on generated speech) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= edge,serve,train,dev
export OPENBLAS_NUM_THREADS ?= 1
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv test lint demo pipeline bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
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
	rm -rf build *.egg-info .pytest_cache

-include deploy/deploy.mk
