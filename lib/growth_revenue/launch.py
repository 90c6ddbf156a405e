"""spark-submit options derived from the config, so spark-submit.sh holds no settings of its own.

`python -m growth_revenue.launch [--config FILE]` prints one option per line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from growth_revenue import jars
from growth_revenue.config import load_config
from growth_revenue.session import base_conf


def submit_options(config_path: str | None) -> list[str]:
    settings = load_config(config_path).spark
    confs = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.jars.ivy": str(Path(settings.ivy_dir).absolute()),
        "spark.ui.showConsoleProgress": "false",
        **base_conf(settings),
    }
    options = [
        "--name", settings.app_name,
        "--master", settings.master,
        "--driver-memory", settings.driver_memory,
        "--packages", ",".join(jars.packages(settings.include_deequ_package)),
        "--exclude-packages", ",".join(jars.EXCLUDED_PACKAGES),
    ]
    for key, value in confs.items():
        options += ["--conf", f"{key}={value}"]
    return options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    print("\n".join(submit_options(args.config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
