# Everything a developer runs. The project finds Python 3.13 itself (PATH, else pyenv).
SHELL := /bin/bash
# A pyenv shim can be on PATH without working, so each candidate must actually run as 3.13.
PYTHON313 ?= $(shell for p in "$$(command -v python3.13)" "$$(PYENV_VERSION=3.13.0 pyenv which python3.13 2>/dev/null)"; do \
	[ -n "$$p" ] && "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo "$$p"; break; }; done)
VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
MUTMUT_VENV := .venv-mutmut
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/twilio-sink
SAM := $(SAM_VENV)/bin/sam
# sam build looks for python3.13 on PATH: the project venv provides it.
SAM_ENV := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0

.PHONY: help setup docker-engine run serve send invoke status test test-fast lint mutate build validate checkov events bench redrive replay clean

# `make` alone: this list. Every target is a thin alias; `twilio-sink COMMAND --help` tells the options.
help:
	@echo "Quick start:  make run   (the local stack, no AWS account)    make test   (set up, run every test)"
	@echo
	@echo "  setup      install the project's virtual environments (.venv with twilio-sink, SAM CLI, checkov)"
	@echo "  run        start the local stack, replay events/ through both doors, print, stop"
	@echo "  serve      the template's stack on 127.0.0.1 until Ctrl-C          (ARGS=\"--help\")"
	@echo "  send       send events to the running local stack                   (ARGS=\"--help\")"
	@echo "  invoke     a function on an event under sam local invoke (Docker)   (ARGS=\"consumer events/kinesis/all.json\")"
	@echo "  status     read the status table                                    (ARGS=\"--help\")"
	@echo "  test       the whole suite (what CI runs after make lint)"
	@echo "  test-fast  the quick loop (under a minute): no sam, Docker or local stack; fewer examples"
	@echo "  lint       ruff over everything, mypy over the core"
	@echo "  mutate     mutation score of the rules (slow; not part of test)   (docs/testing.md)"
	@echo "  bench      throughput, cost, latency, memory, cold start          (ARGS=\"--help\")"
	@echo "  redrive    reprocess stream batches that exhausted their retries  (ARGS=\"--stack NAME --dry-run\")"
	@echo "  replay     send dead letters back through the pipeline            (ARGS=\"--stack NAME --dry-run\")"
	@echo "  events     regenerate events/ from events/samples"
	@echo "  build      sam build          validate   sam validate --lint          checkov   security scan"
	@echo "  clean      remove the virtual environments and build output"

setup: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed

$(VENV)/.installed: requirements-dev.txt layers/core/requirements.txt pyproject.toml
	@test -n "$(PYTHON313)" || { echo "Python 3.13 is required: install it (e.g. 'pyenv install 3.13.0') or put python3.13 on PATH" >&2; exit 1; }
	$(PYTHON313) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt -e '.[local]'
	@touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	@test -n "$(PYTHON313)" || { echo "Python 3.13 is required" >&2; exit 1; }
	$(PYTHON313) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-sam.txt
	@touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	@test -n "$(PYTHON313)" || { echo "Python 3.13 is required" >&2; exit 1; }
	$(PYTHON313) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

run serve send invoke status events bench redrive replay: $(VENV)/.installed
	$(CLI) $@ $(ARGS)

# `sam local invoke` needs a Docker engine. Where none answers, as root on Debian, install Debian's
# docker.io (the engine the tests start and stop themselves) and debootstrap (which builds the stand-in
# Lambda image); elsewhere the sam local invoke test says why it cannot run.
docker-engine:
	@if docker version >/dev/null 2>&1 || { command -v dockerd && command -v debootstrap; } >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io debootstrap; \
	else echo "note: no Docker engine and no root to install one: the sam local invoke test will be skipped"; fi

# One pytest-xdist worker per CPU, each given whole modules (a module's fixtures are set up once, and
# its tests that share a server, the Docker engine or a build stay in one process): docs/testing.md.
PYTEST_PARALLEL := -n auto --dist loadfile

test: setup docker-engine
	$(SAM_ENV) $(PY) -m pytest $(PYTEST_PARALLEL) $(ARGS)

# The edit-test loop: what is marked slow is left to `make test` (docs/testing.md#the-quick-loop).
test-fast: $(VENV)/.installed
	GUARANTEE_EXAMPLES=50 $(PY) -m pytest $(PYTEST_PARALLEL) -m "not slow" -q $(ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Mutation score of the rules against the unit tests; writes docs/generated/mutation.json (docs/testing.md).
mutate: $(MUTMUT_VENV)/.installed
	cd tools && ../$(MUTMUT_VENV)/bin/python -m sink_dev.mutate $(ARGS)

$(MUTMUT_VENV)/.installed: requirements-mutmut.txt requirements-dev.txt layers/core/requirements.txt
	@test -n "$(PYTHON313)" || { echo "Python 3.13 is required" >&2; exit 1; }
	$(PYTHON313) -m venv $(MUTMUT_VENV)
	$(MUTMUT_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-mutmut.txt
	@touch $@

build: setup
	$(SAM_ENV) $(SAM) build

validate: setup
	$(SAM_ENV) $(SAM) validate --lint

# Security scan of template.yaml; each skipped check is justified in its resource's Metadata.
checkov: $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(MUTMUT_VENV) .mutate .aws-sam .pytest_cache .serve
