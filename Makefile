# Darooghe: the two commands are `make demo` and `make test`. Everything else is a building block.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
BUILD := $(or $(DAROOGHE_BUILD),$(CURDIR)/build)
export DAROOGHE_BUILD := $(BUILD)

KAFKA_STAMP := $(BUILD)/kafka-libs/.installed
FERRETDB := $(BUILD)/bin/darooghe-ferretdb
PROMETHEUS := $(BUILD)/bin/prometheus
PROMETHEUS_UI := $(BUILD)/prometheus-ui/static/mantine-ui/index.html
# The connector jars and their manifest (darooghe.spark_jars); sessions never run Ivy.
SPARK_JARS := $(BUILD)/spark-jars/manifest.json
# Hadoop's local file system without a forked process per checkpoint file (infra/spark-localfs).
SPARK_LOCALFS := $(BUILD)/spark-localfs/darooghe-spark-localfs.jar
VENV_STAMP := $(VENV)/.installed

.PHONY: help install demo test test-unit test-faults up down status ui bench clean-state
help:
	@echo "make install   install everything (idempotent): venv, Kafka jars, FerretDB, Prometheus, Spark Kafka connector jars, the local-FS jar"
	@echo "make demo      run the main job on the local stack (installs and starts what it needs)"
	@echo "make test      run the test suite on its own stack (started and stopped around the run)"
	@echo "make test-unit the tests that need no service and no Spark (about 1 minute)"
	@echo "make test-faults  kill brokers, a Spark worker, the fraud driver, the database on the cluster topology"
	@echo "make up|down|status   the local services;  make ui   dagster dev on 127.0.0.1:3000"
	@echo "make bench     run the benchmarks under bench/"

install: $(VENV_STAMP) $(KAFKA_STAMP) $(FERRETDB) $(PROMETHEUS) $(PROMETHEUS_UI) $(SPARK_JARS) $(SPARK_LOCALFS)
	@echo "install: done"

$(VENV_STAMP): pyproject.toml
	@echo "install: Python venv with the pinned stack"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(KAFKA_STAMP): infra/kafka/pom.xml
	@echo "install: Kafka broker jars from Maven Central"
	rm -rf $(BUILD)/kafka-libs
	mvn -q -B -f infra/kafka/pom.xml dependency:copy-dependencies \
		-DoutputDirectory=$(BUILD)/kafka-libs -DincludeScope=runtime
	touch $@

$(FERRETDB): infra/ferretdb/main.go infra/ferretdb/go.mod infra/ferretdb/go.sum
	@echo "install: FerretDB launcher (Go build)"
	mkdir -p $(BUILD)/bin
	cd infra/ferretdb && go build -trimpath -o $(FERRETDB) .

# Prometheus and promtool, pinned in infra/prometheus/go.mod, from the Go module proxy (about 4 min
# on 2 cores the first time; the module cache makes a rebuild quick).
$(PROMETHEUS): infra/prometheus/go.mod infra/prometheus/go.sum
	@echo "install: Prometheus and promtool (Go build)"
	mkdir -p $(BUILD)/bin
	cd infra/prometheus && go build -trimpath -o $(BUILD)/bin/ \
		github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool
	touch $@

# Prometheus' web UI (query and graph pages), built from the same module's sources with pnpm from
# npm (about a minute): the Go build above carries no UI (see the script).
$(PROMETHEUS_UI): infra/prometheus/go.mod infra/prometheus/build_ui.sh
	@echo "install: Prometheus web UI (pnpm + vite)"
	infra/prometheus/build_ui.sh $(BUILD)

# Resolved with Ivy once (cache in $(BUILD)/ivy, its report printed here only), copied with a
# manifest into $(BUILD)/spark-jars; re-resolved when the venv (hence pyspark) changes.
$(SPARK_JARS): $(VENV_STAMP)
	@echo "install: Spark Kafka connector jars into $(BUILD)/spark-jars"
	$(BIN)/python -m darooghe.spark --resolve

# Compiled against the Hadoop API jar that pyspark ships, so rebuilt when the venv changes.
$(SPARK_LOCALFS): $(VENV_STAMP) $(wildcard infra/spark-localfs/src/darooghe/hadoop/*.java)
	@echo "install: fork-free local file system for Spark checkpoints (javac)"
	rm -rf $(BUILD)/spark-localfs && mkdir -p $(BUILD)/spark-localfs/classes
	javac --release 17 -nowarn -d $(BUILD)/spark-localfs/classes \
		-cp "$$($(BIN)/python -m darooghe.spark --hadoop-api-jar)" \
		infra/spark-localfs/src/darooghe/hadoop/*.java
	jar cf $@ -C $(BUILD)/spark-localfs/classes .

demo: install
	$(BIN)/darooghe demo

# The suite runs on its own home and ports (see conftest.py), so a running demo is never touched;
# it starts that stack on first use and, here, stops it at the end.
test: install
	DAROOGHE_TEST_STOP_SERVICES=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

# The fault suite (darooghe_tests/faults): its own cluster-topology stack (3 brokers, Spark standalone),
# started and stopped around the run; each test prints its figures ("FAULT FIGURES {...}").
test-faults: install
	DAROOGHE_TEST_STOP_SERVICES=1 $(BIN)/python -m pytest -m faults -s -p no:cacheprovider \
		darooghe_tests/faults $(PYTEST_ARGS) 2>&1 | grep -v '^%[0-9]|'; exit $${PIPESTATUS[0]}

# The tests that need neither the local services nor Spark (conftest.py marks the others).
test-unit: $(VENV_STAMP) $(SPARK_JARS)
	$(BIN)/python -m pytest -m "not integration and not spark" $(PYTEST_ARGS)

up: install
	$(BIN)/darooghe services up
down:
	$(BIN)/darooghe services down
status:
	$(BIN)/darooghe services status

ui: install
	$(BIN)/darooghe ui

bench: install
	$(BIN)/python -m bench
