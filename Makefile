# Two commands on a fresh machine: `make run` (the whole system) and `make test` (the suite).
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test lint check install clean-state record-histories

run: install  ## install, then run the embedded stack in the foreground
	$(VENV)/bin/o2o dev

test: install  ## install, then run the test suite against real services
	$(VENV)/bin/python -m pytest

lint: install  ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

check: lint test  ## what CI runs, plus the compose file and deploy/ checks
	bash .ci/check-compose
	bash .ci/check-deploy

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	@touch $@

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

record-histories: install  ## record the replay tests' histories again (after a guarded change)
	RECORD_HISTORIES=1 $(VENV)/bin/python -m pytest -q tests/test_durability.py \
		tests/test_preferred_consultant.py

clean-state:  ## forget the embedded stack's data (PostgreSQL, Temporal, mail, SMS)
	rm -rf .state

# ---------------------------------------------------------------- benchmarks and fault drills
# Loopback only, on a temporary embedded stack with ports of its own; every run is bounded.
# Figures land in docs/benchmarks/ (see docs/benchmarks/README.md).
BENCH_ORDERS ?= 200
BENCH_RATE ?= 5
DRILL_ORDERS ?= 2000

.PHONY: bench drills

bench: install  ## load benchmark + no-op ceiling + worker profile (docs/benchmarks/load-api.*)
	$(VENV)/bin/python -m bench.load --orders $(BENCH_ORDERS) --rate $(BENCH_RATE) --profile

drills: install  ## the four fault drills; each ends with its submitted/assigned/… line
	@failed=0; for d in worker-kill temporal-restart postgres-stop smtp-down; do \
	  $(VENV)/bin/python -m bench.drills $$d --orders $(DRILL_ORDERS) || failed=1; \
	done; exit $$failed
