"""The state a run leaves in the mart's commit for the next one, and whether the next run can trust it.

An incremental run (growth_revenue.incremental) applies what changed since the state's watermark;
`decide` says when it must rebuild instead: no state, another writer's commit, a rule input
changed, or a raw table rewritten other than by appends. Pure functions and values only.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from growth_revenue.matching import _normalised, _normalised_domains

# Bump when a release changes what the mart holds for the same raw rows: the next run rebuilds.
# 2: text normalised before matching (Unicode padding), implausible order dates quarantined.
MART_LOGIC_VERSION = 2

FULL, INCREMENTAL = "full", "incremental"

# Commits another writer may add to the mart without invalidating the last run's state.
_DATA_PRESERVING = {
    "OPTIMIZE",
    "VACUUM START",
    "VACUUM END",
    "SET TBLPROPERTIES",
    "UNSET TBLPROPERTIES",
    "ANALYZE STATS",
    "COMPUTE STATS",
    "REORG",
}


def rule_inputs(
    revenue_statuses: Iterable[str],
    test_email_domains: Iterable[str],
    unknown_segment: str,
    reporting_timezone: str,
    earliest_order_date: dt.date,
    max_future_skew_hours: float,
    raw_orders: str,
    raw_customers: str,
) -> dict:
    """Everything besides the raw rows and the run's time that decides the mart: a change to any
    of it means a rebuild."""
    return {
        "revenue_statuses": _normalised(revenue_statuses),
        "test_email_domains": _normalised_domains(test_email_domains),
        "unknown_segment": unknown_segment,
        "reporting_timezone": reporting_timezone,
        "earliest_order_date": earliest_order_date.isoformat(),
        "max_future_skew_hours": max_future_skew_hours,
        "raw_orders": raw_orders,
        "raw_customers": raw_customers,
        "mart_logic_version": MART_LOGIC_VERSION,
    }


@dataclass(frozen=True)
class MartState:
    """What the mart's commit says about the raw data it reflects."""

    run_id: str
    mode: str  # full | incremental
    orders_watermark: str | None  # ISO instant: newest raw_orders._ingested_at applied, None if none
    customer_state_version: int  # version of state_customer_profiles the mart's segments come from
    raw_orders_version: int | None  # Delta version of raw_orders the run read; None when not Delta
    rules: dict
    # Delta version of raw_customers the profiles reflect; None when not Delta (or an older release's
    # state): the next run then recomputes every customer's profile.
    raw_customers_version: int | None = None
    # ISO instant: the latest plausible order_ts of that run (transforms.plausible_order_ts).
    latest_order_ts: str | None = None

    def to_metadata(self) -> str:
        """The commit's userMetadata: the run id (as every commit of a run) and this state."""
        return json.dumps({"run_id": self.run_id, "growth_revenue_state": asdict(self)}, sort_keys=True)

    @staticmethod
    def from_metadata(text: str | None) -> MartState | None:
        """The state in a commit's userMetadata, None when the commit carries none (or not ours)."""
        try:
            state = json.loads(text or "")["growth_revenue_state"]
            return MartState(**state)
        except (ValueError, KeyError, TypeError):
            return None

    @property
    def watermark(self) -> dt.datetime | None:
        return dt.datetime.fromisoformat(self.orders_watermark) if self.orders_watermark else None


@dataclass(frozen=True)
class Decision:
    mode: str
    reason: str
    state: MartState | None = None  # the last run's state, for an incremental run


def decide(history: list[dict], rules: dict, full_refresh: bool) -> Decision:
    """Incremental when the mart's newest commits carry a usable state; otherwise why not.

    `history` is the mart's Delta history newest first (version, operation, userMetadata), empty
    when the mart does not exist.
    """
    if full_refresh:
        return Decision(FULL, "requested (--full-refresh)")
    if not history:
        return Decision(FULL, "first run: no mart yet")
    for commit in history:
        state = MartState.from_metadata(commit["userMetadata"])
        if state is not None:
            break
        if commit["operation"] not in _DATA_PRESERVING:
            return Decision(
                FULL,
                f"version {commit['version']} of the mart ({commit['operation']}) was not "
                "written by this job: its contents cannot be trusted to follow the watermark",
            )
    else:
        return Decision(FULL, "no watermark in the mart's recent history (written by an older release?)")
    changed = sorted(key for key in rules.keys() | state.rules.keys() if rules.get(key) != state.rules.get(key))
    if changed:
        return Decision(FULL, f"rule config changed since run {state.run_id}: {', '.join(changed)}")
    return Decision(INCREMENTAL, f"watermark {state.orders_watermark} from run {state.run_id}", state)


def raw_rewrite(read_version: int | None, raw_history: list[dict]) -> str | None:
    """How a raw table changed other than by appending rows after `read_version`, or None.

    An incremental run finds new rows by their _ingested_at (raw_orders) or their files
    (raw_customers); a raw table overwritten, updated or deleted from (an upstream reload) can
    change old rows, which only reading all of it sees.
    `raw_history` is its Delta history newest first, at least back to `read_version`.
    """
    if read_version is None or not raw_history:
        return None
    newer = [commit for commit in raw_history if commit["version"] > read_version]
    if raw_history[0]["version"] < read_version:
        return f"went back from version {read_version} to {raw_history[0]['version']} (replaced or restored)"
    if newer and min(commit["version"] for commit in newer) != read_version + 1:
        return f"has commits after version {read_version} that its Delta log no longer lists"
    for commit in sorted(newer, key=lambda c: c["version"]):
        parameters = commit["operationParameters"] or {}
        appended = (
            commit["operation"] in ("WRITE", "STREAMING UPDATE")
            and "append" in (parameters.get("mode", "") + parameters.get("outputMode", "")).lower()
        )
        if not appended and commit["operation"] not in _DATA_PRESERVING:
            return f"version {commit['version']} was a {commit['operation']} {parameters.get('mode', '')}".rstrip()
    return None
