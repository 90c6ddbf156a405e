"""The supported Spark lines and what each needs: the one place a version is spelled.

Standard library only, so the Makefile (before any venv exists), spark-submit.sh and the Airflow
venv (which has no pyspark) all read the same facts:

    python -m growth_revenue.jars default-line          the line set-up uses unless told otherwise
    python -m growth_revenue.jars lines                 every supported line
    python -m growth_revenue.jars requirements LINE     the pip pins of LINE, one per line
    python -m growth_revenue.jars packages [LINE]       the Maven packages a run loads, comma-separated
    python -m growth_revenue.jars --resolve             fetch them into the line's Ivy cache, once

`--resolve` also finds out whether the line's Deequ build is served, and records the answer
beside the cache (`<ivy_dir>/<line>/resolved.json`): runs read that record instead of asking
the registry again, so they stay offline and never fail on a jar that set-up could not fetch.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class SparkLine:
    """One supported Spark line: the Python packages, the JVM packages and the managed runtime."""

    name: str  # the Spark minor version, as pydeequ's SPARK_VERSION wants it
    requirements: tuple[str, ...]  # pip pins installed into the line's venv
    delta_package: str  # must match the delta-spark pin (a test checks it)
    deequ_package: str
    databricks_runtime: str  # the Databricks LTS runtime that runs the line


LINES = {
    "3.5": SparkLine(
        name="3.5",
        # pyspark 3.5.5, not later: 3.5.6 made overwriting a catalog table fail with Delta 3.3.2
        # ("does not support truncate in batch mode", delta-io/delta#4671). pyspark 3.5 converts to
        # pandas with APIs pandas 3 removed.
        requirements=("pyspark==3.5.5", "delta-spark==3.3.2", "pandas>=2.2,<3"),
        delta_package="io.delta:delta-spark_2.12:3.3.2",
        # Not pydeequ 1.7.0's mapping (2.0.21-spark-3.5): that build is not served here.
        deequ_package="com.amazon.deequ:deequ:2.1.0-spark-3.5",
        databricks_runtime="16.4.x-scala2.12",
    ),
    "4.1": SparkLine(
        name="4.1",
        # delta-spark 4.4.0, not 4.4.1: the Maven mirror here serves delta-spark_4.1_2.13 up to 4.4.0.
        requirements=("pyspark==4.1.4", "delta-spark==4.4.0"),
        delta_package="io.delta:delta-spark_4.1_2.13:4.4.0",
        # pydeequ 1.7.0's mapping for 4.1; not served here, so set-up records it as missing.
        deequ_package="com.amazon.deequ:deequ:2.0.18-spark-4.1",
        databricks_runtime="18.x-scala2.13",
    ),
}

# The line on which every part of the product, Deequ included, runs on a fresh machine here.
DEFAULT_LINE = "3.5"

# Deequ 2.1.0 depends on the DQDL rule-language parser, which is not served (the job does not use
# DQDL), and on a native BLAS bundle it never calls.
EXCLUDED_PACKAGES = ("software.amazon.glue:dqdl", "net.sourceforge.f2j:arpack_combined_all")

RECORD = "resolved.json"


def line(name: str) -> SparkLine:
    try:
        return LINES[name]
    except KeyError:
        raise ValueError(f"unknown Spark line {name!r}; supported: {', '.join(LINES)}") from None


def installed_line() -> SparkLine:
    """The line of the pyspark installed here (the venv set-up made for it)."""
    try:
        version = metadata.version("pyspark")
    except metadata.PackageNotFoundError:
        version = os.environ.get("SPARK_VERSION") or DEFAULT_LINE  # a managed runtime names its own
    return line(".".join(version.split(".")[:2]))


def ivy_dir(base: str | Path, spark_line: SparkLine) -> Path:
    """Each line has its own Ivy cache, so switching lines never mixes Scala 2.12 and 2.13 jars."""
    return Path(base).absolute() / spark_line.name


def deequ_resolved(base: str | Path, spark_line: SparkLine) -> bool:
    """Whether set-up fetched the line's Deequ jar into its cache (False when set-up never ran)."""
    record = ivy_dir(base, spark_line) / RECORD
    try:
        return bool(json.loads(record.read_text()).get("deequ_resolved"))
    except (OSError, ValueError):
        return False


def packages(spark_line: SparkLine, include_deequ: bool) -> list[str]:
    return [spark_line.delta_package, *([spark_line.deequ_package] if include_deequ else [])]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command, rest = (args[0], args[1:]) if args else ("packages", [])
    if command == "--resolve":
        return _resolve()
    if command == "default-line":
        print(DEFAULT_LINE)
    elif command == "lines":
        print(" ".join(LINES))
    elif command == "requirements":
        print("\n".join(line(rest[0] if rest else DEFAULT_LINE).requirements))
    elif command == "--excludes":
        print(",".join(EXCLUDED_PACKAGES))
    elif command == "packages":
        print(",".join(packages(line(rest[0]) if rest else installed_line(), include_deequ=True)))
    else:
        print(
            "usage: python -m growth_revenue.jars [default-line | lines | requirements LINE | packages [LINE] | --resolve]",
            file=sys.stderr,
        )
        return 2
    return 0


def _resolve() -> int:
    """Start a local session with Delta and Deequ once, so Ivy fetches the jars; record what resolved.

    A Deequ build the registry does not serve fails the whole resolution, so a second session then
    fetches Delta alone and the record says Deequ is missing: `quality.engine: auto` falls back to
    the built-in engine, `deequ` refuses to run.
    """
    import dataclasses

    from growth_revenue.config import load_config
    from growth_revenue.session import local_session, stop_spark
    from growth_revenue.sparkutil import first_line

    spark_line = installed_line()
    settings = load_config().spark
    cache = ivy_dir(settings.ivy_dir, spark_line)
    cache.mkdir(parents=True, exist_ok=True)
    error = ""
    for include_deequ in (True, False):
        try:
            stop_spark(local_session(dataclasses.replace(settings, master="local[1]"), spark_line, include_deequ))
            break
        except Exception as exc:  # Ivy's failure reaches Python as a generic JVM error
            if not include_deequ:
                raise
            error = first_line(exc)
    resolved = packages(spark_line, include_deequ)
    record = {
        "line": spark_line.name,
        "packages": resolved,
        "deequ_package": spark_line.deequ_package,
        "deequ_resolved": include_deequ,
        **({"deequ_error": error} if error else {}),
    }
    (cache / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"Spark {spark_line.name}: jars resolved into {cache}: {', '.join(resolved)}"
        + (
            ""
            if include_deequ
            else f"; {spark_line.deequ_package} did not resolve, the built-in quality engine will verify ({error})"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
