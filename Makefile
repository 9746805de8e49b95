# The two commands: `make demo` (set up, run the main job on the embedded lake) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STATE := $(CURDIR)/.lakehouse
export DAGSTER_HOME ?= $(STATE)/dagster
export LAKEHOUSE_STATE_DIR ?= $(STATE)
# The last DEMO_DAYS complete days (UTC), so freshness checks, schedules and sensors see real days.
DEMO_DAYS ?= 7
DEMO_END ?= $(shell date -u -d yesterday +%F)
DEMO_START ?= $(shell date -u -d "$(DEMO_DAYS) days ago" +%F)
BENCH_ROWS ?= 1000000
BENCH_RUNS ?= 3
BENCH_DOMAIN ?= events
BENCH_CONTENDERS ?= sail,spark,peer,baseline
# ENGINE=spark: the local Apache Spark cluster (infra/spark_connect.py) instead of in-process Sail.
ENGINE ?= sail
ifeq ($(ENGINE),spark)
ENGINE_UP := spark-up
ON_ENGINE = LAKEHOUSE_SPARK_REMOTE=$$($(BIN)/python -m infra.spark_connect url)
else ifneq ($(ENGINE),sail)
$(error ENGINE must be sail or spark, not $(ENGINE))
endif

.PHONY: help install up down env demo dev catalog-api test lint bench bench-iot bench-readme bench-deps clean redis postgres spark-jars spark-up spark-down

help:
	@echo "make demo   set up, start the embedded S3, build 7 days of every asset, print a summary"
	@echo "make test   run the test suite (starts its own S3 and engine)"
	@echo "make lint   ruff check, ruff format --check and mypy"
	@echo "make dev    the Dagster UI on http://127.0.0.1:3000"
	@echo "make up / make down   start / stop the embedded S3 (and the UI if running)"
	@echo "make env    exports for your shell: eval \"\$$(make -s env)\""
	@echo "make spark-up / make spark-down   start / stop the local Apache Spark cluster (Delta Lake, S3A)"
	@echo "ENGINE=spark  make demo|env|dev on that cluster instead of Sail"
	@echo "make bench  the suite: one events day of BENCH_ROWS rows on Sail, Spark, the DuckDB peer, delta-rs"
	@echo "make bench-iot / bench-readme   iot at 5M readings / the latest figures into README.md"
	@echo "make catalog-api   the catalog and feature query APIs on http://127.0.0.1:8090 (tokens: lakehouse token)"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.9,<0.14"
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[dev]'
	touch $@

$(DAGSTER_HOME)/dagster.yaml: infra/dagster.yaml
	install -d -m 700 $(STATE) $(DAGSTER_HOME) && cp infra/dagster.yaml $@

up: install $(DAGSTER_HOME)/dagster.yaml
	@$(BIN)/python -m infra.local_s3 start

down:
	@$(BIN)/python -m infra.dagster_ui stop || true
	@$(BIN)/python -m infra.spark_connect stop || true
	@$(BIN)/python -m infra.local_s3 stop

# Delta Lake, hadoop-aws and the AWS SDK bundle from Maven Central (infra/spark/pom.xml), cached.
spark-jars: install
	@$(BIN)/python -m infra.spark_connect jars

spark-up: up spark-jars
	@$(BIN)/python -m infra.spark_connect start

spark-down:
	@$(BIN)/python -m infra.spark_connect stop

env: install
	@$(BIN)/python -m infra.local_s3 env
	@$(if $(ENGINE_UP),$(BIN)/python -m infra.spark_connect env)
	@$(BIN)/python -c 'import os, shlex; print("export DAGSTER_HOME=" + shlex.quote(os.environ["DAGSTER_HOME"]))'
	@$(BIN)/lakehouse features env

demo: up $(ENGINE_UP)
	$(BIN)/lakehouse generate --start $(DEMO_START) --days $(DEMO_DAYS)
	@echo "materializing every asset for $(DEMO_START)...$(DEMO_END) in one run on $(ENGINE) (log: $(STATE)/demo-run.log)"
	@$(ON_ENGINE) $(BIN)/dagster asset materialize -m orchestration.definitions --select '*' \
	    --partition-range $(DEMO_START)...$(DEMO_END) > $(STATE)/demo-run.log 2>&1 \
	    || { grep -vE " (DEBUG|INFO) " $(STATE)/demo-run.log | tail -40; exit 1; }
	@grep -oE "RUN_SUCCESS.*" $(STATE)/demo-run.log
	$(ON_ENGINE) $(BIN)/lakehouse summary
	@echo
	$(ON_ENGINE) $(BIN)/lakehouse quality
	@echo "Data Docs: $(STATE)/quality/data_docs/index.html"
	@echo
	$(ON_ENGINE) $(BIN)/lakehouse features lookup --service churn --sample 3
	@echo
	@echo "The embedded S3 is still running. Open the UI with: make dev  (http://127.0.0.1:3000)"
	@echo "Use the lake from your shell with: eval \"\$$(make -s env)\"   Stop everything with: make down"

dev: up $(ENGINE_UP)
	$(ON_ENGINE) $(BIN)/python -m infra.dagster_ui run

catalog-api: up
	$(BIN)/python -m lakehouse.catalog_api

# Debian's redis-server for the Redis online store tests (skipped when it is on the PATH).
redis:
	@infra/install_redis.sh

# Debian's PostgreSQL server binaries for the Dagster-on-PostgreSQL tests (the tests start their own server).
postgres:
	@infra/install_postgres.sh

# bench-deps: tests/test_bench_peer.py proves the DuckDB peer reproduces our outputs.
test: install redis postgres spark-jars bench-deps
	$(BIN)/python -m pytest tests

# ruff (lint, format) and mypy, configured in pyproject.toml; .pre-commit-config.yaml runs the same.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The suite (benchmarks/suite.py): ours on Sail and on Apache Spark + Delta, the DuckDB + delta-rs peer
# and the delta-rs copy baseline, BENCH_RUNS runs each; JSON and PNG into $(STATE)/bench/.
bench: up spark-jars bench-deps
	$(BIN)/python -m benchmarks.suite --domain $(BENCH_DOMAIN) --rows $(BENCH_ROWS) --runs $(BENCH_RUNS) \
	    --contenders $(BENCH_CONTENDERS)

# The high-volume domain: iot at 5M readings (no peer for iot).
bench-iot:
	$(MAKE) bench BENCH_DOMAIN=iot BENCH_ROWS=5000000 BENCH_CONTENDERS=sail,spark,baseline

# The table of the latest figures into README.md, between its bench markers.
bench-readme: install
	$(BIN)/python -m benchmarks.suite --table-only --readme

bench-deps: install
	@$(BIN)/python -c "import duckdb, matplotlib" 2>/dev/null || $(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[dev,bench]'

clean: down
	rm -rf $(STATE)
