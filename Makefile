# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up.
PYTHON_BOOT ?= python3.11
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
JARS_STAMP  := .ivy/.resolved

.PHONY: venv jars demo test clean bench

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

demo: jars
	$(PY) -m growth_revenue.sample_data --config conf/local.yaml --out data/lakehouse/raw
	./spark-submit.sh --config conf/local.yaml

test: jars
	$(PY) -m pytest

clean:
	rm -rf build data spark-warehouse .pytest_cache

bench: jars
	$(PY) bench/bench_nightly.py --orders $(or $(ORDERS),5000000)
