"""The job's code as one zip for `--py-files`, so a cluster's executors import the same package.

`python -m growth_revenue.package [OUT]` writes OUT (default build/growth_revenue.zip) and prints its path.
Pure standard library: spark-submit.sh and an Airflow deployment call it without pyspark.
"""

from __future__ import annotations

import os
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = Path("build") / "growth_revenue.zip"


def build_zip(out: str | Path = DEFAULT_OUT) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    source_root = PACKAGE_DIR.parent
    # Written beside the target, then swapped in: a launch already running from the old zip
    # (a parallel backfill, say) never reads a half-written one.
    handle, staging = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(PACKAGE_DIR.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    zf.write(path, path.relative_to(source_root))
        os.replace(staging, out)
    finally:
        if os.path.exists(staging):
            os.remove(staging)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    print(build_zip(*args[:1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
