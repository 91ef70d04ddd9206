# The README's two commands: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WRK := /usr/bin/wrk
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint schema

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

## wrk, from Debian's packages, drives bench/load.py, which the suite runs in its quick mode.
$(WRK):
	apt-get install -y --no-install-recommends wrk \
		|| (apt-get update && apt-get install -y --no-install-recommends wrk)

## Serve GraphiQL and the API at http://$(HOST):$(PORT)/graphql on the default SQLite database,
## migrated, with the sample park loaded if the database holds no park yet.
run: $(STAMP)
	$(BIN)/mfa serve --host $(HOST) --port $(PORT) --migrate --sample-if-empty

## The whole suite: lint, formatting, types, Dockerfile lint (in pytest), tests on SQLite and
## PostgreSQL.
test: $(STAMP) $(WRK) lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Regenerate the committed GraphQL contract after changing the schema.
schema: $(STAMP)
	$(BIN)/mfa export-schema > graphql/schema.graphql
