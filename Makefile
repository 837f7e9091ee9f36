# Two entry points for a newcomer: `make demo` and `make test`.
# Both create .venv when missing and install what the project needs; a second run only
# re-installs when pyproject.toml or the torch pins change (see the stamp file).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
DEMO_DIR ?= outputs/demo
# any recipe of configs/quickstart/, e.g. cluster_contrast_synth.yaml or mmm_synth.yaml
DEMO_CONFIG ?= configs/quickstart/agw_synth.yaml
PYTEST_ARGS ?= -n 2
# e.g. MUTANTS_ARGS=--fast (the subset CI runs) or MUTANTS_ARGS="--only mmm."
MUTANTS_ARGS ?=

.PHONY: test demo install lint format bench clean mutants

$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[faiss,dev,corrupt,export,serve]'
	rm -f $(VENV)/.stamp-*
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: install
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

demo: install
	$(PY) -m vireid demo --out $(DEMO_DIR) --config $(DEMO_CONFIG)

# every mechanism mutant against its guarding tests (tests/mutants); 0 survivors expected
mutants: install
	$(PY) -m tests.mutants $(MUTANTS_ARGS)

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache outputs
