# carprice — see README.md. Every target creates .venv and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest

.PHONY: up demo services down status install test test-unit test-services trained-models test-kafka-apache kafka-jars browser lint train ui clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# libpass replaced passlib (the same import): a venv made before must drop the original
	$(BIN)/python -m pip uninstall -q -y passlib 2>/dev/null || true
	$(BIN)/python -m pip install -q -e ".[dev,devstack,bench]"
	touch $(STAMP)

install: $(STAMP)

## up: install, train the models if none are registered, run the whole stack until Ctrl-C
## (Apache Kafka; UP_ARGS="--kafka tansu" for Tansu; UP_ARGS="--demo" for a demo user)
up: $(STAMP)
	$(BIN)/carprice up $(UP_ARGS)

## demo: `make up` with a demo user (credentials printed)
demo: $(STAMP)
	$(BIN)/carprice up --demo $(UP_ARGS)

## services: only PostgreSQL and the broker, in the background (make down stops them)
services: $(STAMP)
	$(BIN)/carprice services up

down: $(STAMP)
	$(BIN)/carprice services down

status: $(STAMP)
	$(BIN)/carprice services status

ui: $(STAMP)
	$(BIN)/carprice ui

train: $(STAMP)
	$(BIN)/carprice train

## browser: Debian's Chromium for the browser test (Playwright drives it; no browser download)
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

## test: the whole suite against real PostgreSQL and a real broker: Tansu, which starts in a
## second (`make up` defaults to Apache Kafka, and so does its own test; test-kafka-apache
## runs the Kafka tests on Apache Kafka). The unit tests run beside the others: those mostly
## wait on processes, so the two share the cores well. Each prints its output when it ends.
test: kafka-jars browser trained-models
	$(MAKE) --no-print-directory -j2 --output-sync=target test-unit test-services

test-unit: $(STAMP)
	$(PYTEST) tests/unit --durations=10

## test-services: the integration and end-to-end tests (real services; Tansu by default)
test-services: kafka-jars browser trained-models
	KAFKA_IMPL=$${KAFKA_IMPL:-tansu} $(PYTEST) tests/e2e tests/integration -m "not cluster" --durations=20

## trained-models: the tests' registry, trained once per version of the training code
trained-models: $(STAMP)
	$(BIN)/python -m tests.trained

kafka-jars: $(STAMP)
	$(BIN)/python -c "from devstack.apache_kafka import ensure_jars; print(ensure_jars())"

## test-kafka-apache: the Kafka tests again, against Apache Kafka 4.x (KRaft), and the
## failover test on a 3-node cluster
test-kafka-apache: kafka-jars browser trained-models
	KAFKA_IMPL=apache $(PYTEST) tests -m "kafka or cluster" --durations=20

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean: down
	rm -rf .carprice
