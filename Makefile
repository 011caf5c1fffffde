# The commands people type. `make demo` and `make test` set everything up themselves.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

SETUP_STAMP := $(VENV)/.setup-$(shell cat pyproject.toml package.json | sha256sum | cut -c1-16)

.PHONY: help setup model lint typecheck asl test test-unit test-integration test-infrastructure test-e2e synth cfn-lint demo clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'

$(SETUP_STAMP): pyproject.toml package.json
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	npm install --no-audit --no-fund --silent
	rm -f $(VENV)/.setup-* && touch $@

setup: $(SETUP_STAMP) ## Create .venv, install the pins, the CDK CLI, the layer's ARM64 wheels and the model (quick when done)
	@$(BIN)/python -m infrastructure.layer_build
	@$(BIN)/python -m models

model: $(SETUP_STAMP) ## Train (if stale) and package every declared model into models/<package>/artifacts/
	$(BIN)/python -m models

lint: setup ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup ## mypy --strict on functions/, layers/, infrastructure/ and models/
	$(BIN)/mypy functions layers/aios/python/aios infrastructure models

asl: setup ## Check the ASL sources' layout, expand their fragments, validate each with statelint
	$(BIN)/python -m infrastructure.asl_source --check --expand-to build/asl
	@for f in build/asl/*.asl.json; do $(BIN)/statelint "$$f" || exit 1; done; echo "statelint: all ASL files valid"

test-unit: setup
	$(BIN)/pytest tests/unit -q -p no:cacheprovider

test-integration: setup
	$(BIN)/pytest tests/integration -q -p no:cacheprovider

test-infrastructure: setup
	$(BIN)/pytest tests/infrastructure -q -p no:cacheprovider

test-e2e: setup
	$(BIN)/pytest tests/e2e -q -p no:cacheprovider

synth: setup ## Synthesize every stack into cdk.out/ (offline, cdk-nag enforced)
	rm -rf cdk.out
	CDK_OUTDIR=cdk.out $(BIN)/python -m infrastructure.app

cfn-lint: synth ## cfn-lint on the synthesized templates (W3005 is CDK's own redundant DependsOn)
	$(BIN)/cfn-lint --ignore-checks W3005 -- cdk.out/*.template.json

test: lint typecheck asl cfn-lint ## Everything CI runs: lint, types, ASL, all test tiers, synth + cdk-nag + cfn-lint
	$(BIN)/pytest tests -q -p no:cacheprovider -n 2 --dist loadfile

demo: setup ## Run the main job locally
	$(BIN)/python -m infrastructure.demo

clean: ## Remove build outputs (keeps .venv)
	rm -rf cdk.out build .mypy_cache .ruff_cache .pytest_cache
