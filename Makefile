# Two commands do all the set-up: `make demo` and `make test`.
# Each creates .venv on first use, installs torch first (TORCH pins the CPU wheel
# that lies on disk here; a bare `torch` would pull a multi-GB CUDA build), then
# this package in editable mode. Later runs reuse the venv and start in seconds.

PYTHON ?= python3
TORCH ?= torch==2.13.0
EXTRAS ?= all
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(EXTRAS)
WORKERS ?= 2

.PHONY: demo test lint bench bench-atari clean install

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]" "$(TORCH)"
	touch $@

demo: $(STAMP)
	$(PY) examples/solve_tsp.py

test: $(STAMP)
	$(PY) -m pytest -n $(WORKERS) -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) benchmarks/gae_vs_sb3.py
	$(PY) benchmarks/c51_vs_sb3.py

bench-atari: $(STAMP)
	nice -n 10 $(PY) benchmarks/atari_vs_sb3.py --threads 1

clean:
	rm -rf $(VENV) runs .pytest_cache
