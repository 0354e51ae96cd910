# Approval Gate — every set-up step lives here, so a fresh clone needs only `make demo`
# or `make test`. Python 3.11+; no Docker; network only to the package registries.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements/*.txt functions/approval_gate/requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
PIP_FLAGS := --quiet --disable-pip-version-check
DECISION ?= approve
PORT ?= 8400
PYTEST_ARGS ?=

# Tools whose pins clash with the app's get virtual environments of their own.
SAM_VENV := .tools/sam
SAM_VERSION := 1.170.0
# `sam build` runs the runtime's Python (python3.12) from pyenv when it is there.
export PYENV_VERSION ?= 3.11.7:3.12.1:3.13.0

.PHONY: help venv demo test lint lint-fast sandbox build clean

help:
	@echo "make demo      run one approval end to end in the local sandbox (DECISION=approve|reject)"
	@echo "make test      lint (ruff, cfn-lint, ASL check) and the whole test suite"
	@echo "make lint      the full lint: ruff, mypy, cfn-lint, ASL check"
	@echo "make sandbox   run the sandbox on http://127.0.0.1:$(PORT) (PORT=…)"
	@echo "make build     sam build (needs the runtime's Python, 3.12)"

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -r requirements/dev.txt -c requirements/constraints.txt
	$(BIN)/python -m pip install $(PIP_FLAGS) --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

demo: venv
	$(BIN)/approval-gate demo --decision $(DECISION)

sandbox: venv
	$(BIN)/approval-gate sandbox --port $(PORT)

lint-fast: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml
	$(BIN)/python tools/check_asl.py --template template.yaml statemachine/*.asl.json

lint: lint-fast
	$(BIN)/mypy functions sandbox tools

test: lint-fast
	$(BIN)/python -m pytest $(PYTEST_ARGS)

$(SAM_VENV)/bin/sam:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install $(PIP_FLAGS) aws-sam-cli==$(SAM_VERSION)

build: $(SAM_VENV)/bin/sam
	$(SAM_VENV)/bin/sam build --template-file template.yaml
	@du -sh .aws-sam/build/*/ | sed 's|.aws-sam/build/||'

clean:
	rm -rf $(VENV) .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache
