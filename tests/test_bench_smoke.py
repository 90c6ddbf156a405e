"""The benchmark harness end to end at a tiny scale, so it keeps working between real benchmark runs.

No timing is asserted: timings live in docs/benchmarks.md, measured at real scales. This checks
that every scenario runs, the page has every row, and DuckDB's report equals the job's.
"""

import json
import subprocess
import sys

import pytest
from demo import ROOT, job_env, small_job_config

SCENARIO_ROWS = (
    "| full rebuild",
    "| incremental nightly, 40-day history",
    "| incremental nightly, 30-day history",
    "| report alone",
    "| naive Spark",
    "| DuckDB",
    "| full rebuild, random-key shape",
    "| incremental nightly, 40-day history, random-key shape",
    "| incremental nightly, 40-day history, adaptive execution on while staging and verifying",
)


@pytest.mark.slow
def test_bench_runs_every_scenario_and_duckdb_agrees_with_the_job(tmp_path):
    doc, results, readme = tmp_path / "benchmarks.md", tmp_path / "results", tmp_path / "README.md"
    readme.write_text((ROOT / "README.md").read_text())
    command = [
        sys.executable,
        str(ROOT / "bench" / "bench_nightly.py"),
        "--orders",
        "3000",
        "--customers",
        "300",
        "--days",
        "40",
        "--repeat",
        "1",
        "--driver-memory",
        "1g",
        "--config",
        str(small_job_config(tmp_path / "job.yaml")),
        "--out",
        str(tmp_path / "bench"),
        "--results",
        str(results),
        "--doc",
        str(doc),
        "--readme",
        str(readme),
    ]
    completed = subprocess.run(command, cwd=ROOT, env=job_env(), capture_output=True, text=True, timeout=900)

    assert completed.returncode == 0, completed.stderr[-4000:]
    text = doc.read_text()
    targets = text.split("## Targets", 1)[1].split("### What limits it", 1)[0]
    target_rows = [line for line in targets.splitlines() if line.startswith("| ") and "orders |" in line]
    verdicts = [row.rstrip(" |").rsplit("| ", 1)[1] for row in target_rows]
    assert len(target_rows) == 10, targets
    # Every target gets a verdict, the random-key one included.
    assert all(v == "met" or v.startswith(("met: ", "**NOT met**")) for v in verdicts), targets
    for label in SCENARIO_ROWS:
        row = next((line for line in text.splitlines() if line.startswith(label)), None)
        assert row is not None and "FAILED" not in row, f"{label}: {row}"
    assert "DuckDB's report matches the job's: yes" in text
    assert (
        "Random-key shape: every incremental nightly's report and mart row count equal the full rebuild's: yes" in text
    )
    # README's Performance lines are rewritten from the same results, and nothing else in it.
    written, performance = performance_section(readme.read_text())
    assert performance.count("\n- ") == 3 and "Nightly over 3,000 orders and 40 days of history: **" in performance
    assert written == performance_section((ROOT / "README.md").read_text())[0]
    stored = json.loads(next(results.glob("*.json")).read_text())
    assert set(stored["scenarios"]) == {
        "full",
        "incremental",
        "incremental_aqe",
        "incremental30",
        "report",
        "naive",
        "duckdb",
        "full_random",
        "incremental_random",
    }
    assert set(stored["data"]) == {"40", "30", "40-random"}
    # The job's own per-stage record, stored per run and rendered as the step table.
    nightly = stored["scenarios"]["incremental"]["runs"][0]
    assert [stage["name"] for stage in nightly["stages"]][:2] == ["read and decide", "customer profiles"]
    assert nightly["spark"]["jobs"] == sum(stage["spark_jobs"] for stage in nightly["stages"]) > 0
    steps = text.split("Where the time goes", 1)[1].split("\n\n", 2)[1]
    assert (
        "| stage | full rebuild | incremental nightly | incremental (adaptive execution) | incremental (30 days) |"
        in steps
    )
    # The nightly's adaptive-execution setting, measured side by side in the same run.
    assert "With adaptive execution on while it stages and verifies" in text.split("### What limits it", 1)[1]
    assert any(line.startswith("| publish mart | ") for line in steps.splitlines())


def performance_section(readme: str) -> tuple[str, str]:
    """(README without its Performance section's body, that body)."""
    head, heading, rest = readme.partition("## Performance")
    body, next_heading, tail = rest.partition("\n## ")
    return head + heading + next_heading + tail, body


@pytest.mark.slow
def test_layout_bench_measures_every_layout_through_nights_of_merges_and_an_optimize(tmp_path):
    doc = tmp_path / "mart_layout.md"
    command = [
        *(sys.executable, str(ROOT / "bench" / "layout.py"), "--orders", "2400", "--days", "120", "--repeat", "1"),
        *("--nights", "2"),
        *("--driver-memory", "1g", "--out", str(tmp_path / "layout"), "--doc", str(doc)),
    ]
    completed = subprocess.run(command, cwd=ROOT, env=job_env(), capture_output=True, text=True, timeout=900)

    assert completed.returncode == 0, completed.stderr[-4000:]
    text = doc.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| layout")]
    assert [row.split(" | ")[0] for row in rows] == [
        "| partitioned by order_date",
        "| liquid clustering on order_date",
        "| date-ranged files (a week of order dates each)",
        "| date-ranged files, kept by OPTIMIZE ZORDER BY order_date",
        "| neither (baseline)",
    ]
    # 30 of 120 dates: the limit is half the mart's bytes. A plain OPTIMIZE packs every layout but
    # the partitioned one into one file; the ZORDER into bounded files keeps the date ranges.
    met_by = "of the mart's bytes, after the write, after the nights and after OPTIMIZE; met by: "
    assert met_by + "partitioned by order_date, date-ranged files, kept by OPTIMIZE ZORDER BY order_date." in text
    files_after_optimize = {row.split(" | ")[0]: int(row.split(" | ")[13].replace(",", "")) for row in rows}
    assert files_after_optimize["| partitioned by order_date"] == 120
    assert files_after_optimize["| date-ranged files (a week of order dates each)"] == 1
    assert files_after_optimize["| date-ranged files, kept by OPTIMIZE ZORDER BY order_date"] > 1
