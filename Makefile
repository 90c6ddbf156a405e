# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up.
PYTHON_BOOT ?= python3.11
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
JARS_STAMP  := .ivy/.resolved
# Airflow lives in its own venv: its pins and pyspark-client clash with the job's pyspark.
AIRFLOW_VENV  := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed

.PHONY: venv jars airflow-venv package demo test clean bench bench-layout

$(STAMP): pyproject.toml
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(STAMP)

# Resolve the Delta (and, if enabled, Deequ) jars into .ivy once; later runs are offline.
$(JARS_STAMP): $(STAMP) lib/growth_revenue/jars.py
	$(PY) -m growth_revenue.jars --resolve
	touch $@

jars: $(JARS_STAMP)

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

demo: jars
	$(PY) -m growth_revenue.sample_data --config conf/local.yaml --out data/lakehouse/raw
	./spark-submit.sh --config conf/local.yaml

test: jars $(AIRFLOW_STAMP)
	$(PY) -m pytest

clean:
	rm -rf build data spark-warehouse .pytest_cache

# Benchmarks -> docs/benchmarks.md (bench/results/ keeps each scale's numbers). Defaults: 10M orders over
# 365 days, every scenario; e.g. make bench BENCH_ARGS="--orders 50000000 --scenarios incremental,duckdb"
bench: jars
	$(PY) bench/bench_nightly.py $(BENCH_ARGS)

# Mart layout: partitioned vs liquid-clustered vs neither -> docs/mart_layout.md
bench-layout: jars
	$(PY) bench/layout.py $(LAYOUT_ARGS)
