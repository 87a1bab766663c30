# Two set-up commands for a fresh clone: `make run` (the main job) and `make test` (every check).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
RUNSTAMP := $(VENV)/.installed-run

.PHONY: run test lint typecheck pytest services bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade 'pip>=25.1'

$(RUNSTAMP): pyproject.toml hatch_build.py $(wildcard src/perflayer/*/*.c) | $(BIN)/python
	$(BIN)/pip install -q -e '.[all]'
	touch $@

# make test insists on the C accelerators (PERFLAYER_REQUIRE_EXT), so CI always tests them
$(STAMP): pyproject.toml hatch_build.py $(wildcard src/perflayer/*/*.c) | $(BIN)/python
	PERFLAYER_REQUIRE_EXT=1 $(BIN)/pip install -q -e '.[all]'
	$(BIN)/pip install -q --group dev
	touch $@ $(RUNSTAMP)

run: $(RUNSTAMP)
	$(BIN)/perflayer analyze examples/sprawl
	$(BIN)/perflayer demo

services:
	@bash scripts/ensure-services.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

pytest: $(STAMP) services
	$(BIN)/pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

# Every benchmark, side by side with its peers (long: tens of minutes on 2 cores).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.hitratio
	$(BIN)/python -m benchmarks.cache_latency
	$(BIN)/python -m benchmarks.monitor
	$(BIN)/python -m benchmarks.memory
	$(BIN)/python -m benchmarks.overload
	$(BIN)/python -m benchmarks.analyze_speed
	$(BIN)/python -m benchmarks.integrations
	$(BIN)/python -m benchmarks.tiers

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
