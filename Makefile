# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up.
PYTHON_BOOT ?= python3.11
# The Spark line (growth_revenue/jars.py LINES): `make demo SPARK_LINE=4.1`. Each line has its own
# venv and Ivy cache, so switching lines never mixes jars.
LINES_CLI   := PYTHONPATH=lib $(PYTHON_BOOT) -m growth_revenue.jars
SPARK_LINE  ?= $(shell $(LINES_CLI) default-line)
export SPARK_LINE
VENV        := .venv-$(SPARK_LINE)
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
JARS_STAMP  := .ivy/$(SPARK_LINE)/resolved.json
ALL_LINES   := $(shell $(LINES_CLI) lines)
OTHER_LINES := $(filter-out $(SPARK_LINE),$(ALL_LINES))
# Airflow lives in its own venv: its pins and pyspark-client clash with the job's pyspark.
AIRFLOW_VENV  := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed

.PHONY: venv jars all-lines airflow-venv package demo lint test test-fast test-line clean bench bench-layout

$(STAMP): pyproject.toml lib/growth_revenue/jars.py
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' $$($(LINES_CLI) requirements $(SPARK_LINE))
	touch $@

venv: $(STAMP)

# Resolve the line's Delta and Deequ jars into .ivy/<line> once and record whether Deequ resolved;
# later runs are offline.
$(JARS_STAMP): $(STAMP)
	$(PY) -m growth_revenue.jars --resolve

jars: $(JARS_STAMP)

# Every line's venv and jars: the cross-line tests run the job on each.
all-lines:
	@for line in $(ALL_LINES); do $(MAKE) --no-print-directory jars SPARK_LINE=$$line || exit 1; done

# The Airflow venv the DAG tests run (tests/test_airflow_dag.py calls its python in subprocesses).
$(AIRFLOW_STAMP): dags/requirements-airflow.txt
	$(PYTHON_BOOT) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet -r dags/requirements-airflow.txt
	touch $@

airflow-venv: $(AIRFLOW_STAMP)

# The job's code as the zip spark-submit ships to executors (build/growth_revenue.zip); run at deploy time.
package: $(STAMP)
	$(PY) -m growth_revenue.package

# The product night after night, on a fresh sample lakehouse under data/lakehouse: night 1
# (yesterday 07:00 UTC) builds the mart from seeded raw tables; a day of changes lands (new, late,
# cancelled and corrected orders, a segment move, a new test user); night 2 (now) applies it
# incrementally; then what the users see in the published tables (growth_revenue.showcase).
demo: jars
	@set -e; yesterday=$$($(PY) -c 'import datetime as d; print(d.datetime.now(d.timezone.utc).date() - d.timedelta(days=1))'); \
	week_before=$$($(PY) -c "import datetime as d; print(d.date.fromisoformat('$$yesterday') - d.timedelta(days=6))"); \
	rm -rf data/lakehouse; \
	echo "== night 1 ($$yesterday 07:00 UTC): sample raw tables; the job's first run builds the mart and backfills a week of report snapshots"; \
	$(PY) -m growth_revenue.sample_data --config conf/local.yaml --out data/lakehouse/raw --as-of $$yesterday \
		--ingested-until $${yesterday}T06:00:00Z; \
	./spark-submit.sh --config conf/local.yaml --as-of-range $$week_before $$yesterday --run-timestamp $${yesterday}T07:00:00Z; \
	echo "== a day of changes lands in the raw tables"; \
	$(PY) -m growth_revenue.sample_data --config conf/local.yaml --out data/lakehouse/raw --next-day; \
	echo "== night 2 (now): the job again, incrementally"; \
	./spark-submit.sh --config conf/local.yaml; \
	echo "== what the users see"; \
	$(PY) -m growth_revenue.showcase --config conf/local.yaml

# Lint, format check and type check (configured in pyproject.toml); part of `make test`.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# The whole suite on this line, then on every other line the tests that must hold there too:
# everything not marked slow, plus the slow tests marked every_line (CONTRIBUTING.md "Tests").
test: lint all-lines $(AIRFLOW_STAMP)
	$(PY) -m pytest
	@for line in $(OTHER_LINES); do $(MAKE) --no-print-directory test-line SPARK_LINE=$$line || exit 1; done

test-line: jars
	$(PY) -m pytest -m "not slow or every_line"

# The inner loop: this line only, no slow tests, no Airflow venv.
test-fast: jars
	$(PY) -m pytest -m "not slow"

clean:
	rm -rf build data spark-warehouse .pytest_cache

# Benchmarks -> docs/benchmarks.md (bench/results/ keeps each scale's numbers). Defaults: 10M orders over
# 365 days, every scenario; e.g. make bench BENCH_ARGS="--orders 50000000 --scenarios incremental,duckdb"
bench: jars
	$(PY) bench/bench_nightly.py $(BENCH_ARGS)

# Mart layout: partitioned vs liquid-clustered vs date-ranged files vs neither -> docs/mart_layout.md
bench-layout: jars
	$(PY) bench/layout.py $(LAYOUT_ARGS)
