# Every target sets up what it needs: a fresh clone runs `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-unit test-slow bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dask]'
	touch $(STAMP)

demo: venv
	$(BIN)/multilevel demo

test: venv
	$(BIN)/python -m pytest -q

test-unit: venv
	$(BIN)/python -m pytest -q -m unit

test-slow: venv
	$(BIN)/python -m pytest -q -m slow

bench: venv
	$(BIN)/python benchmarks/bench_cheese.py
	$(BIN)/python benchmarks/bench_face.py
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_insteval.py
	$(BIN)/python benchmarks/bench_glm.py
	$(BIN)/python benchmarks/bench_families.py
	$(BIN)/python benchmarks/bench_meta.py
	$(BIN)/python benchmarks/bench_crossed.py
	$(BIN)/python benchmarks/bench_merged.py

clean:
	rm -rf $(VENV) build *.egg-info
