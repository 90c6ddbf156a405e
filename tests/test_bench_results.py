"""The benchmark page's scaling table and projection, on results written in the test (no Spark)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import results_doc

FIXED, PER_ORDER, PER_HISTORY_ORDER = 20.0, 1e-6, 3e-6  # seconds; per order in history (see CostModel)


def point(days: int, volume: int, per_order: float, daily: int = 1_000) -> dict:
    orders = days * daily * volume
    seconds = FIXED + per_order * orders
    stages = [{"name": "stage mart", "seconds": seconds / 2}, {"name": "publish mart", "seconds": seconds / 4}]
    run = {"seconds": seconds, "spark": {"jobs": 180, "input_rows": orders, "shuffle_mib": 1.0}, "stages": stages}
    return {"days": days, "volume": volume, "orders": orders, "daily_orders": daily * volume, "runs": [run]}


def scale(points: list[dict]) -> dict:
    invocation = {"at": "2026-12-06 20:00:00 UTC", "git": "abc1234", "command": "bench", "machine": {"cores": 2}}
    return {
        "scale": {"orders": 365_000, "customers": 36_500, "days": 365},
        "scenarios": {"scaling": {"runs": [], "points": points, "invocation": invocation["at"]}},
        "invocations": {invocation["at"]: invocation},
    }


# The rows at one volume grow by PER_HISTORY_ORDER, the rows at 365 days by PER_ORDER (the 365-day,
# 1x row is on both lines: it is given the volume line's cost, so the history line is fitted off it).
SERIES = [point(days, 1, PER_HISTORY_ORDER) for days in (30, 90, 730)] + [point(365, k, PER_ORDER) for k in (1, 4, 16)]


def test_the_cost_model_recovers_the_fixed_cost_and_the_slopes_of_each_line():
    model = results_doc.fit_cost([p for p in SERIES if p["volume"] > 1 or p["days"] == 365], 365)
    assert model is not None and model.clamped == () and model.per_history_order is None
    assert model.fixed == pytest.approx(FIXED)
    assert model.per_order == pytest.approx(PER_ORDER)
    apart = [point(d, 1, PER_HISTORY_ORDER) for d in (30, 730)] + [point(365, k, PER_ORDER) for k in (4, 16)]
    both = results_doc.fit_cost(apart, 365)
    assert both is not None and both.per_history_order == pytest.approx(PER_HISTORY_ORDER)
    assert both.per_order == pytest.approx(PER_ORDER)


def test_a_negative_slope_is_taken_as_zero_and_said_so():
    shrinking = [point(365, k, -1e-7) for k in (1, 4)]
    model = results_doc.fit_cost(shrinking, 365)
    assert model is not None and model.clamped == ("orders",) and model.per_order == 0
    assert "slope of orders came out negative" in "\n".join(results_doc.render_projection(model, 2, 365))


def test_the_scaling_table_has_a_row_per_point_and_projects_from_the_fit():
    lines = results_doc.render_scaling([scale(SERIES)])
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| history")]
    assert [row.split(" | ")[0:3] for row in rows] == [
        ["| 30", "1,000", "30,000"],
        ["| 90", "1,000", "90,000"],
        ["| 730", "1,000", "730,000"],
        ["| 365", "1,000", "365,000"],
        ["| 365", "4,000", "1,460,000"],
        ["| 365", "16,000", "5,840,000"],
    ]
    projection = lines[-1]
    assert f"about {(FIXED + PER_ORDER * 1e9) / 60:.0f} min here" in projection
    assert f"about {(FIXED + PER_ORDER * 1e9 * 2 / 64) / 60:.1f} min on a 64-core cluster" in projection


def test_without_a_scaling_run_the_page_says_how_to_measure_it():
    assert "Not measured yet" in "\n".join(results_doc.render_scaling([]))
    assert results_doc.fit_cost(SERIES[:4], 365) is None  # one row at 365 days is no line


def test_readme_lines_are_rewritten_between_the_markers_only():
    readme = f"# Title\n\n## Performance\n\n{results_doc.README_START}\nold line\n{results_doc.README_END}\n\n## Next\n"
    written = results_doc.with_readme_summary(readme, [])
    assert written.startswith("# Title\n\n## Performance\n\n") and written.endswith("\n\n## Next\n")
    assert "old line" not in written and "No benchmark results stored yet" in written
    with pytest.raises(ValueError, match=r"no .* block"):
        results_doc.with_readme_summary("# no markers\n", [])


def rebuild_at_100m(spark: str, engine: str | None) -> dict:
    """A stored 100M full rebuild, run on `spark` verifying with `engine` (None: recorded before engines were)."""
    invocation = {
        "at": "2026-12-07 20:00:00 UTC",
        "git": "abc1234",
        "driver_memory": "8g",
        "machine": {"cores": 2, "spark": spark, "quality_engine": engine},
    }
    return {
        "scale": {"orders": 100_000_000, "customers": 10_000_000, "days": 365},
        "scenarios": {"full": {"runs": [{"seconds": 2500.0, "peak_rss_mib": 8_000.0}], "invocation": invocation["at"]}},
        "invocations": {invocation["at"]: invocation},
    }


def test_a_target_measured_off_the_default_line_or_without_deequ_is_marked_so():
    off_line = "\n".join(results_doc.render_targets([rebuild_at_100m("4.1.4", None)]))
    row = next(line for line in off_line.splitlines() if line.startswith("| A 100M-order"))
    assert "git abc1234, Spark 4.1.4, spark engine †" in row and "| met |" in row
    assert "† not measured on the default Spark line (3.5) with Deequ verifying" in off_line
    assert "†" in "\n".join(results_doc.render_targets([rebuild_at_100m("3.5.5", "spark")]))
    on_line = "\n".join(results_doc.render_targets([rebuild_at_100m("3.5.5", "deequ")]))
    assert "git abc1234, Spark 3.5.5, deequ engine |" in on_line and "†" not in on_line


def test_readme_counts_the_targets_met_off_the_default_line_apart():
    off_line = results_doc.targets_line([rebuild_at_100m("4.1.4", None)])
    assert "1 of 10 met (1 of them off the default Spark line or without Deequ)" in off_line
    assert "1 of 10 met." in results_doc.targets_line([rebuild_at_100m("3.5.5", "deequ")])
