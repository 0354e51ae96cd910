# Approval Gate — every set-up step lives here, so a fresh clone needs only `make demo`
# or `make test`. Python 3.11+; no Docker; network only to the package registries.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements/dev.txt requirements/constraints.txt functions/approval_gate/requirements.txt functions/approval_gate/requirements-build.txt pyproject.toml | cksum | cut -d' ' -f1)
PIP_FLAGS := --quiet --disable-pip-version-check
DECISION ?= approve
PORT ?= 8400
PYTEST_ARGS ?=
# The suite runs on this many pytest-xdist workers (the tests that wait, for holds,
# reminders and deadlines, overlap); PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2

# Tools whose pins clash with the app's get virtual environments of their own, each
# installed from its own frozen requirement file.
SAM_VENV := .tools/sam
CHECKOV_VENV := .tools/checkov
ASL_STAMP := tools/asl/node_modules/.installed
TEMPLATES := template.yaml examples/pipeline.yaml examples/check-function/template.yaml
# checkov must not phone home (no network but the package registries; only loopback).
CHECKOV := BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --framework cloudformation \
	--compact --quiet --skip-download
# `sam build` runs the runtime's Python (python3.12). With pyenv and no PYENV_VERSION of
# yours, the newest pyenv 3.12.x is put beside the version in use, so `python3.12` resolves
# whatever patch version this machine has (and `python3` stays the one you chose).
PYENV_312 := $(shell pyenv versions --bare --skip-aliases 2>/dev/null | grep -E '^3\.12\.[0-9]+$$' | sort -t. -k3,3n | tail -n 1)
ifneq ($(PYENV_312),)
export PYENV_VERSION ?= $(shell pyenv version-name 2>/dev/null):$(PYENV_312)
endif

# The message catalogs (approval_gate.i18n): each language's .po, compiled to .mo by Babel.
LOCALE := functions/approval_gate/locale
CATALOGS := $(patsubst %.po,%.mo,$(wildcard $(LOCALE)/*/LC_MESSAGES/approval_gate.po))

.PHONY: help venv catalogs catalogs-update browser demo test lint lint-fast sandbox build bench \
	reliability clean

help:
	@echo "make demo      run one approval end to end in the local sandbox (DECISION=approve|reject)"
	@echo "make test      the full lint and the whole test suite"
	@echo "make lint      ruff, mypy, import-linter, cfn-lint and checkov on the templates, the ASL check"
	@echo "make sandbox   run the sandbox on http://127.0.0.1:$(PORT) (PORT=…)"
	@echo "make build     sam build (needs the runtime's Python, 3.12)"
	@echo "make bench     the benchmarks and their targets (docs/performance.md; ~15 min)"
	@echo "make reliability  fuzz, races and a 300-approval soak under faults (docs/reliability.md)"
	@echo "make catalogs-update  extract the messages into each language's .po (then translate)"

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -r requirements/dev.txt -c requirements/constraints.txt
	$(BIN)/python -m pip install $(PIP_FLAGS) --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP) catalogs

catalogs: $(CATALOGS)

$(LOCALE)/%.mo: $(LOCALE)/%.po $(STAMP)
	$(BIN)/pybabel --quiet compile --input-file $< --output-file $@

catalogs-update: $(STAMP)
	$(BIN)/python -m tools.catalogs update
	$(BIN)/python -m tools.catalogs check

# Debian's Chromium, for the browser tests (tests/browser): Playwright launches it by its
# path, since Playwright's own browser download is not reachable. Installed only when
# missing; apt-get needs root (CI is root; elsewhere sudo asks).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

demo: venv
	$(BIN)/approval-gate demo --decision $(DECISION)

sandbox: venv
	$(BIN)/approval-gate sandbox --port $(PORT)

# lint-imports checks the layers (docs/architecture.md#layers); it takes ~0.2 s, so it
# keeps no cache directory in the tree.
lint-fast: venv $(ASL_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint $(TEMPLATES)
	node tools/asl/validate.js statemachine/*.asl.json
	$(BIN)/python tools/check_asl.py --template template.yaml statemachine/*.asl.json
	$(BIN)/python -m tools.check_policy config/policy.yaml
	PYTHONPATH=functions:. $(BIN)/lint-imports --no-cache --no-logo

lint: lint-fast $(CHECKOV_VENV)/bin/checkov
	$(BIN)/mypy functions sandbox cli tools reliability
	$(foreach t,$(TEMPLATES),$(CHECKOV) -f $(t) &&) true

test: lint browser
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# AWS's state-machine validator and asl-validator (npm, pinned by the lockfile; Node.js 18+).
$(ASL_STAMP): tools/asl/package-lock.json
	npm ci --prefix tools/asl --no-audit --no-fund
	touch $@

$(CHECKOV_VENV)/bin/checkov: requirements/checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install $(PIP_FLAGS) -r requirements/checkov.txt
	touch $@

$(SAM_VENV)/bin/sam: requirements/sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install $(PIP_FLAGS) -r requirements/sam.txt
	touch $@

build: $(SAM_VENV)/bin/sam venv
	$(BIN)/python -m tools.check_policy config/policy.yaml
	$(SAM_VENV)/bin/sam build --template-file template.yaml
	$(BIN)/python -m tools.check_layer .aws-sam/build
	@echo "Built size of each function and layer (boto3 is the runtime's, not packaged):"
	@du -sh .aws-sam/build/*/ | sed 's|.aws-sam/build/||'

bench: venv
	$(BIN)/python -m bench.run

reliability: venv
	$(BIN)/python -m reliability.run

clean:
	rm -rf $(VENV) .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache tools/asl/node_modules
