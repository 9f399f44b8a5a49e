# lsexp developer commands. `make quickstart` and `make test` each work on a fresh machine
# as the only command typed: they create .venv and install the package first if needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lsexp-installed

.PHONY: setup quickstart test test-fast lint format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The main job on the bundled data: 7 alphas x 5 seeds, then the report.
quickstart: setup
	$(VENV)/bin/lsexp sweep configs/quickstart.yaml
	$(VENV)/bin/lsexp report results/quickstart

test: setup
	$(PY) -m pytest -q

# Unit tests only (skips the slow end-to-end and real-data tests).
test-fast: setup
	$(PY) -m pytest -q -m "not slow and not realdata"

# lsexp vs the naive DataLoader baseline on real Fashion-MNIST (needs dataset-fashion-mnist),
# then the report's cost on a synthetic 200-run sweep with every report feature on.
bench: setup
	$(PY) benchmarks/bench.py
	$(PY) benchmarks/report_bench.py --json benchmarks/report_results.json

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
