"""Maven coordinates of the JVM libraries the job needs: the one place they are spelled.

`python -m growth_revenue.jars` prints the comma-separated package list, so
spark-submit.sh and the session helper always agree.
"""

from __future__ import annotations

import sys

SCALA_BINARY = "2.13"
SPARK_MINOR = "4.1"

# Delta's artifact carries the Spark minor version; the unsuffixed one targets Spark 4.2.
# 4.4.0: the newest delta-spark_4.1 the Maven mirror here serves (4.4.1 answers 404).
DELTA_PACKAGE = f"io.delta:delta-spark_{SPARK_MINOR}_{SCALA_BINARY}:4.4.0"

# pydeequ 1.7.0's own mapping for Spark 4.1. Opt-in (spark.include_deequ_package), because
# the Maven mirror here does not serve it; see README "Quality engines".
DEEQU_PACKAGE = "com.amazon.deequ:deequ:2.0.18-spark-4.1"

# Deequ drags in a native BLAS bundle it never uses and that does not resolve cleanly.
EXCLUDED_PACKAGES = ("net.sourceforge.f2j:arpack_combined_all",)


def packages(include_deequ: bool) -> list[str]:
    return [DELTA_PACKAGE, *([DEEQU_PACKAGE] if include_deequ else [])]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--resolve"]:
        return _resolve()
    if args == ["--excludes"]:
        print(",".join(EXCLUDED_PACKAGES))
    else:
        print(",".join(packages(include_deequ="--with-deequ" in args)))
    return 0


def _resolve() -> int:
    """Start and stop a local session once, so Ivy fetches the jars into the configured cache."""
    from growth_revenue.config import load_config
    from growth_revenue.session import get_spark, stop_spark

    stop_spark(get_spark(load_config().spark))
    print(f"jars resolved: {', '.join(packages(load_config().spark.include_deequ_package))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
