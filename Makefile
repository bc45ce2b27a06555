# Everything runs from .venv (python3.13), created on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# python3.13: PATH first, then pyenv installs (pyenv shims may not expose 3.13).
PYTHON313 ?= $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3 /root/.pyenv/versions/3.13*/bin/python3 /usr/local/bin/python3.13 /usr/bin/python3.13; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then command -v $$p; break; fi; done)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
# sam needs python3.13 on PATH for BuildMethod python3.13: the venv provides it.
export PATH := $(BIN):$(PATH)
export SAM_CLI_TELEMETRY := 0
# template.yaml writes each event family once with Fn::ForEach (the AWS::LanguageExtensions transform):
# sam build and sam validate expand it only with this (samconfig.toml sets it for plain `sam` too).
export SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS := 1
export AWS_DEFAULT_REGION ?= us-east-1
BUILD_DIR := .aws-sam/build
# boto3 alone, as the Lambda runtime provides it: the deployed-artifact tests import handlers with only this.
RUNTIME_DIR := .aws-sam/lambda-runtime

.PHONY: help dev dist lint fmt validate build test release-check test-partner unit integration e2e infra bench run deploy deploy-check delete logs audit cost clean send status rotate redrive events template reliability soak

help:
	@echo "Local"
	@echo "  make run          local stack (no AWS account, no Docker); ARGS=--reload reloads code on change"
	@echo "  make test         set up .venv, validate + build the SAM app, audit, run every test (but tests/release)"
	@echo "  make release-check what a partner receives and runs, built and started for real: sam package, the"
	@echo "                    wheel, copier update, a new family in a scratch copy, sam build with your"
	@echo "                    requirements, sam local invoke, make run as a process, the README's recipes (CI runs it)"
	@echo "  make test-partner your handlers' own tests (partner/tests)"
	@echo "  make dev          only set up .venv"
	@echo "  make dist         the ntp wheel (pip install dist/*.whl gives the ntp command)"
	@echo "  make build        sam build (arm64) + bytecode"
	@echo "  make lint | fmt   ruff + mypy | format and fix"
	@echo "  make audit        checkov on the template, bandit on the code"
	@echo "  make bench        performance budgets (ARGS=--write records them in docs/performance.md)"
	@echo "  make reliability  regenerate docs/reliability.md (a fault at every AWS call)"
	@echo "  make soak         a month of faults through the real functions (ARGS=--write records it)"
	@echo "  make cost         the monthly bill at 1, 10, 100 million webhooks (ARGS=--write updates docs/cost.md)"
	@echo "  make events       regenerate events/ (sample events, env.json)"
	@echo "  make template     write template.yaml's per-family lines from its family list (after adding a family)"
	@echo "  make clean        remove .venv and build output"
	@echo "AWS (CONFIG_ENV=default|prod from samconfig.toml)"
	@echo "  make deploy       build, then sam deploy (guided the first time)"
	@echo "  make deploy-check make deploy's own steps into LocalStack (no AWS account): the functions run,"
	@echo "                    tests/deployed drives the stack, then it is updated and deleted"
	@echo "  make e2e STACK=x  tests/deployed against your deployed stack x (after make deploy; AWS_PROFILE as usual)"
	@echo "  make logs         follow a function's logs: FUNCTION=ingest|OrderConsumer|..."
	@echo "  make delete       delete the stack (tables are kept; it says how to delete them)"
	@echo "  make send|status|rotate|redrive   the ntp CLI (TARGET=--local or TARGET='--stack NAME')"

# Your handlers' requirements too: `make run` and `make test-partner` import them.
$(STAMP): pyproject.toml layers/shared/requirements.txt partner/handlers/requirements.txt
	@test -n "$(PYTHON313)" || { echo "python3.13 not found: install it or set PYTHON313=/path/to/python3.13"; exit 1; }
	$(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -r partner/handlers/requirements.txt
	@touch $@

dev: $(STAMP)

# --no-warn-conflicts: pip compares the target with .venv, where aws-sam-cli pins its own boto3, and
# prints a resolver ERROR about packages that never share an interpreter with this directory.
$(RUNTIME_DIR)/.installed: $(STAMP)
	$(PY) -m pip install --quiet --upgrade --no-warn-conflicts --target $(RUNTIME_DIR) boto3
	@touch $@

# actionlint checks the GitHub workflows (and, through shellcheck on PATH, their run: scripts);
# cfn-lint the pipeline's AWS side (pipeline/template.yaml; template.yaml is sam validate --lint's).
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy layers/shared functions ntp devtools tools tests
	$(BIN)/actionlint .github/workflows/*.yml
	$(BIN)/cfn-lint pipeline/template.yaml

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

validate: $(STAMP)
	$(BIN)/sam validate --lint --template template.yaml

# sam build ships no bytecode, and /opt and /var/task are read-only in Lambda: without this every cold
# start compiles the whole layer. unchecked-hash .pyc files stay valid after zip drops mtimes.
build: $(STAMP) $(RUNTIME_DIR)/.installed
	$(BIN)/sam build --template template.yaml --build-dir $(BUILD_DIR)
	$(PY) -m compileall -q -j0 --invalidation-mode unchecked-hash $(BUILD_DIR) >/dev/null

# lint first: a format, lint or type error fails before the slow steps.
test: lint validate build audit
	$(PY) -m pytest

# A minute of CPU in sam, pip, copier, a nested pytest and `make run` processes: kept out of `make test`'s inner loop, run by CI after it.
release-check: $(STAMP) $(RUNTIME_DIR)/.installed
	$(PY) -m pytest tests/release

# The `ntp` wheel for `pip install` (the CLI and the ntp_webhooks library it shares with the functions).
dist: $(STAMP)
	rm -rf dist build
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir dist .
	@ls dist/*.whl

# Your tests of your handlers (partner/tests), with your handlers as the consumers load them.
test-partner: $(STAMP)
	$(PY) -m pytest partner/tests -p no:randomly -n 0 -p no:cacheprovider --rootdir partner

unit: $(STAMP)
	$(PY) -m pytest tests/unit

integration: $(STAMP)
	$(PY) -m pytest tests/integration

# STACK=<name>: tests/deployed against that deployed stack (through its outputs, HTTP and the AWS APIs,
# with your usual AWS_PROFILE; the region is AWS_REGION, else samconfig.toml's, where make deploy put
# it); it removes the records it created. Without: the local e2e tests.
e2e: $(STAMP)
ifneq ($(filter command line environment,$(origin STACK)),)
	AWS_REGION=$${AWS_REGION:-$(REGION)} NTP_E2E_STACK=$(STACK) $(PY) -m pytest tests/deployed -p no:randomly -n 0
else
	$(PY) -m pytest tests/e2e
endif

infra: validate build
	$(PY) -m pytest tests/infrastructure

bench: build
	$(PY) -m tools.bench $(ARGS)

# The local stack: moto + the functions in-process, provisioned from template.yaml. Ctrl-C stops it.
run: $(STAMP)
	$(PY) -m devtools.local_stack $(ARGS)

# Regenerate events/ (signed sample events, SQS batches, rotation steps, env.json) from one source.
events: $(STAMP)
	$(PY) -m tools.sample_events

# The lines that name every family (the other loops, the ingest's queues, the dashboard), from the first loop's list.
template: $(STAMP)
	$(PY) -m tools.template_families

# What 1, 10 and 100 million webhooks a month cost: tools/usage.json (make bench measures it) priced with
# tools/cost_model.json (ARGS=--write updates docs/cost.md; ARGS="--set FrontDoor=FunctionUrl" at other parameters).
cost: $(STAMP)
	$(PY) -m tools.cost $(ARGS)

# A month of faults in one process: 20,000 deliveries, re-sends, SQS duplicates, 1% faulted AWS calls
# (ARGS=--write records the figures in docs/reliability.md; --deliveries N for a shorter run).
soak: $(STAMP)
	$(PY) -m tools.soak $(ARGS)

# Regenerate docs/reliability.md: a fault at every AWS call of ingest and consumer, and the outcome.
reliability: $(STAMP)
	$(PY) -m tools.fault_table

# Wrappers around the `ntp` CLI. TARGET=--local for the local stack, or --stack NAME (default from samconfig).
# `make rotate` waits until the new key is AWSCURRENT (a local rotation is synchronous anyway).
TARGET ?=
EVENT ?= order.created
send: $(STAMP)
	$(BIN)/ntp send $(EVENT) $(TARGET) $(ARGS)

status: $(STAMP)
	$(BIN)/ntp status $(TARGET) $(ARGS)

rotate: $(STAMP)
	$(BIN)/ntp rotate --wait $(TARGET) $(ARGS)

FAMILY ?= order
redrive: $(STAMP)
	$(BIN)/ntp redrive $(FAMILY) $(TARGET) $(ARGS)

# samconfig.toml environment: `make deploy CONFIG_ENV=prod`. devtools.deploy runs `sam package` of the
# precompiled build in $(BUILD_DIR), checks that CloudFormation would accept what it wrote, then
# `sam deploy` of that packaged template; the first deploy of a stack is guided.
CONFIG_ENV ?= default
STACK = $(shell $(PY) -m ntp.samconfig stack-name $(CONFIG_ENV))
REGION = $(shell $(PY) -m ntp.samconfig region $(CONFIG_ENV))
deploy: build
	$(PY) -m devtools.deploy --config-env $(CONFIG_ENV) $$($(PY) -m ntp.samconfig deploy-flags $(CONFIG_ENV)) -- $(ARGS)

# Deletes the stack. The tables are kept (DeletionPolicy: Retain); the note says how to delete them.
delete: $(STAMP)
	$(BIN)/sam delete --config-file $(CURDIR)/samconfig.toml --config-env $(CONFIG_ENV) $(ARGS)
	@echo "Kept on purpose (DeletionPolicy: Retain): the state table, the dedup table and the archive bucket of $(STACK)."
	@echo "To delete the tables too: aws dynamodb delete-table --region $(REGION) --table-name <name>"
	@echo "(names: aws dynamodb list-tables --region $(REGION) | grep $(STACK))."
	@echo "To delete the archive (every event received, for replay and audit): aws s3 rb s3://<bucket> --force"
	@echo "(name: aws s3 ls | grep $(STACK)-archivebucket; with ArchiveVersioning=true, delete its object versions first)."
	@echo "The alarm topic's KMS key is scheduled for deletion by CloudFormation (7-30 days, cancellable)."

# Follows one function's logs on AWS: FUNCTION=ingest|QuoteConsumer|OrderConsumer|WorkflowConsumer|rotation
FUNCTION ?= ingest
logs: $(STAMP)
	$(BIN)/sam logs --region $(REGION) --cw-log-group /aws/lambda/$(STACK)/$(FUNCTION) --tail $(ARGS)

# The real `sam deploy` into LocalStack on the host (no Docker), checked through the AWS APIs, then an
# update, a delete and a broken variant that must be refused. LocalStack lives in its own venv.
LOCALSTACK_VENV := .aws-sam/localstack-venv
$(LOCALSTACK_VENV)/.installed: tools/localstack-requirements.txt tools/localstack_plugins/pyproject.toml $(wildcard tools/localstack_plugins/*.py)
	@test -n "$(PYTHON313)" || { echo "python3.13 not found"; exit 1; }
	$(PYTHON313) -m venv $(LOCALSTACK_VENV)
	$(LOCALSTACK_VENV)/bin/python -m pip install -qq -r tools/localstack-requirements.txt
	$(LOCALSTACK_VENV)/bin/python -m pip install -qq ./tools/localstack_plugins
	@touch $@

deploy-check: build $(LOCALSTACK_VENV)/.installed
	$(PY) -m tools.deploy_check --localstack-python $(CURDIR)/$(LOCALSTACK_VENV)/bin/python

# Static checks, offline: checkov on the template, bandit on the code. Skips are listed with reasons
# in .checkov.yaml and pyproject.toml [tool.bandit]. Own venv: checkov pins boto3 below sam's.
AUDIT_VENV := .aws-sam/audit-venv
$(AUDIT_VENV)/.installed: tools/audit-requirements.txt
	@test -n "$(PYTHON313)" || { echo "python3.13 not found"; exit 1; }
	$(PYTHON313) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/python -m pip install --quiet -r tools/audit-requirements.txt
	@touch $@

# checkov skips what is inside a Fn::ForEach: it reads the template as CloudFormation expands it.
audit: $(AUDIT_VENV)/.installed $(STAMP)
	$(PY) -m devtools.sam_template .aws-sam/expanded/template.json >/dev/null
	$(AUDIT_VENV)/bin/checkov --config-file .checkov.yaml --quiet --compact -f .aws-sam/expanded/template.json
	@echo "checkov: $$(grep -c '^  - CKV_' .checkov.yaml) checks not run on purpose, each with its reason in .checkov.yaml (its \"Skipped checks\" counts only inline skips)"
	$(AUDIT_VENV)/bin/bandit -c pyproject.toml -q -r layers functions ntp devtools tools

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
