#!/usr/bin/env bash
# Launch the nightly revenue job with spark-submit.
#
#   ./spark-submit.sh [--config conf/local.yaml] [--as-of YYYY-MM-DD | --as-of-range START END]
#                     [--run-timestamp ISO-8601]
#                     [--raw-orders PATH_OR_TABLE] [--raw-customers PATH_OR_TABLE] [--output-dir DIR]
#                     [--full-refresh]
#                     [--master URL] [any other spark-submit option ...]
#
# Job options go to the job; everything else (--master, --conf k=v, --executor-memory 4g, ...)
# goes to spark-submit, after the defaults derived from the config, so it wins.
# Exit codes: the job's own (README "Exit codes", defined in lib/growth_revenue/exit_codes.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The Spark line's venv (make venv SPARK_LINE=...); the default line is named in growth_revenue/jars.py.
SPARK_LINE="${SPARK_LINE:-$(PYTHONPATH="$ROOT/lib" python3 -m growth_revenue.jars default-line)}"
PYTHON="${GROWTH_PYTHON:-$ROOT/.venv-$SPARK_LINE/bin/python}"
SPARK_SUBMIT="${SPARK_SUBMIT:-$(dirname "$PYTHON")/spark-submit}"

if [[ ! -x "$PYTHON" ]]; then
  echo "spark-submit.sh: no Python environment at $PYTHON; run 'make venv SPARK_LINE=$SPARK_LINE' first (or set GROWTH_PYTHON)" >&2
  exit 2
fi

job_args=() submit_args=() config=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --config)
      [[ $# -ge 2 ]] || { echo "spark-submit.sh: --config needs a value" >&2; exit 2; }
      config="$2"; job_args+=("$1" "$2"); shift 2 ;;
    --as-of|--run-timestamp|--raw-orders|--raw-customers|--output-dir)
      [[ $# -ge 2 ]] || { echo "spark-submit.sh: $1 needs a value" >&2; exit 2; }
      job_args+=("$1" "$2"); shift 2 ;;
    --as-of-range)
      [[ $# -ge 3 ]] || { echo "spark-submit.sh: --as-of-range needs START and END" >&2; exit 2; }
      job_args+=("$1" "$2" "$3"); shift 3 ;;
    --config=*|--as-of=*|--run-timestamp=*|--raw-orders=*|--raw-customers=*|--output-dir=*)
      [[ "$1" == --config=* ]] && config="${1#--config=}"
      job_args+=("$1"); shift ;;
    -h|--help|--full-refresh)
      job_args+=("$1"); shift ;;
    *)
      submit_args+=("$1"); shift ;;
  esac
done

export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$PYTHON}"
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$PYTHON}"
export PYTHONPATH="$ROOT/lib${PYTHONPATH:+:$PYTHONPATH}"
# pydeequ refuses to import without it: the line of the venv's pyspark, whatever the caller's shell says.
export SPARK_VERSION="$("$PYTHON" -c 'from growth_revenue import jars; print(jars.installed_line().name)' 2>/dev/null || echo "$SPARK_LINE")"

# The package travels to executors as a zip, so a cluster's workers import the same code.
"$PYTHON" -m growth_revenue.package "$ROOT/build/growth_revenue.zip" >/dev/null

mapfile -t defaults < <(cd "$ROOT" && "$PYTHON" -m growth_revenue.launch ${config:+--config "$config"}) || true
if [[ ${#defaults[@]} -eq 0 ]]; then
  echo "spark-submit.sh: could not derive spark-submit options from the config" >&2
  exit 2
fi

cd "$ROOT"
exec "$SPARK_SUBMIT" \
  "${defaults[@]}" \
  --driver-java-options "-Dlog4j2.configurationFile=file:$ROOT/conf/log4j2.properties" \
  --py-files "$ROOT/build/growth_revenue.zip" \
  "${submit_args[@]}" \
  "$ROOT/jobs/nightly_revenue.py" "${job_args[@]}"
