# Everything a developer runs. The project finds Python 3.13 itself (PATH, else pyenv).
SHELL := /bin/bash
# A pyenv shim can be on PATH without working, so each candidate must actually run as 3.13.
PYTHON313 ?= $(shell for p in "$$(command -v python3.13)" "$$(PYENV_VERSION=3.13.0 pyenv which python3.13 2>/dev/null)"; do \
	[ -n "$$p" ] && "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo "$$p"; break; }; done)
VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
# sam build looks for python3.13 on PATH: the project venv provides it.
SAM_ENV := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0

.PHONY: setup run serve test build validate checkov events bench redrive replay clean

setup: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed

$(VENV)/.installed: requirements-dev.txt layers/core/requirements.txt pyproject.toml
	@test -n "$(PYTHON313)" || { echo "Python 3.13 is required: install it (e.g. 'pyenv install 3.13.0') or put python3.13 on PATH" >&2; exit 1; }
	$(PYTHON313) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt -e .
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

run: $(VENV)/.installed
	$(PY) -m scripts.run_local $(ARGS)

# The template's stack on 127.0.0.1 until Ctrl-C (options: make serve ARGS="--help").
serve: $(VENV)/.installed
	$(PY) -m scripts.serve $(ARGS)

test: setup
	$(SAM_ENV) $(PY) -m pytest


events: $(VENV)/.installed
	$(PY) -m scripts.generate_events

build: setup
	$(SAM_ENV) $(SAM) build

validate: setup
	$(SAM_ENV) $(SAM) validate --lint

# Security scan of template.yaml; each skipped check is justified in its resource's Metadata.
checkov: $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download

# Throughput, latency, memory and cold-start numbers of the real handlers (see README "Performance").
bench: $(VENV)/.installed
	$(PY) -m bench $(ARGS)

# Recovery against a deployed stack, e.g. `make redrive ARGS="--stack twilio-sink --dry-run"` (see --help).
redrive: $(VENV)/.installed
	$(PY) -m scripts.redrive $(ARGS)

replay: $(VENV)/.installed
	$(PY) -m scripts.replay $(ARGS)

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .serve
