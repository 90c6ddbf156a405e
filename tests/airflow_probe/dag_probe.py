"""Runs inside the Airflow venv (.venv-airflow), never the job's: what Airflow makes of the DAG file.

    python dag_probe.py DAGS_FOLDER OUT.json [CASES.json]

writes {"describe": ..., "rendered": ...} to OUT.json:
- describe: import errors, the DAG's and the task's settings as parsed, the next scheduled trigger
  after a few instants, and the job-side modules (pyspark, pydeequ, ...) the DAG file pulled in;
- rendered: the task's templated fields rendered through the Task SDK's own context builder, for
  each case {"name", "run_type", "logical_date" (ISO or null), "run_after" (ISO)} in CASES.json.

The parse-time settings (GROWTH_REVENUE_*) and Variables (AIRFLOW_VAR_*) come from the environment
the test passes. The result goes to OUT.json, so Airflow's log lines on stdout do not get in the way.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import uuid
from pathlib import Path

DAG_ID = "growth_revenue_nightly"
TASK_ID = "nightly_revenue"
JOB_MODULE_ROOTS = ("pyspark", "pydeequ", "py4j", "delta")


def load_dag(dags_folder: str):
    from airflow.dag_processing.dagbag import DagBag

    before = set(sys.modules)
    bag = DagBag(dag_folder=dags_folder)
    pulled = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in JOB_MODULE_ROOTS)
    return bag, pulled


def describe(bag, pulled: list[str]) -> dict:
    import pendulum
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.timetables.base import TimeRestriction

    result = {
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "dag_ids": sorted(bag.dags),
        "job_modules_imported": pulled,
    }
    dag = bag.dags.get(DAG_ID)
    if dag is None:
        return result
    # The scheduler works on the serialized DAG: describe that one, so the round trip is tested too.
    scheduled = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    task = dag.get_task(TASK_ID)
    next_triggers = {}
    for after in ("2026-11-24T12:00:00+00:00", "2026-11-25T06:59:00+00:00", "2026-11-25T07:00:01+00:00"):
        info = scheduled.timetable.next_dagrun_info(
            last_automated_data_interval=None,
            restriction=TimeRestriction(earliest=pendulum.parse(after), latest=None, catchup=True),
        )
        next_triggers[after] = info.logical_date.isoformat() if info else None
    result.update(
        dag={
            "timetable_type": type(scheduled.timetable).__name__,
            "schedule": scheduled.timetable.summary,
            "timezone": str(dag.timezone.name),
            "next_triggers": next_triggers,
            "tags": sorted(dag.tags),
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "doc_md": dag.doc_md,
            "task_ids": [t.task_id for t in dag.tasks],
        },
        task={
            "type": f"{type(task).__module__}.{type(task).__name__}",
            "owner": task.owner,
            "retries": task.retries,
            "retry_delay_s": task.retry_delay.total_seconds(),
            "retry_exponential_backoff": bool(task.retry_exponential_backoff),
            "max_retry_delay_s": task.max_retry_delay.total_seconds() if task.max_retry_delay else None,
            "execution_timeout_s": task.execution_timeout.total_seconds() if task.execution_timeout else None,
            "conn_id": task._conn_id,
            "application": task.application,
            "py_files": task.py_files,
            "packages": task.packages,
            "exclude_packages": task.exclude_packages,
            "conf": task.conf,
            "driver_memory": task._driver_memory,
            "name": task.name,
            "env_vars": task.env_vars,
            "application_args": task.application_args,
        },
    )
    return result


def render(bag, cases: list[dict]) -> dict:
    from airflow.sdk.api.datamodels._generated import DagRun, DagRunState, DagRunType, TIRunContext
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    rendered = {}
    for case in cases:
        # A copy per case: rendering replaces the templated attributes on the task it is given.
        task = bag.dags[DAG_ID].get_task(TASK_ID).prepare_for_execution()
        logical = dt.datetime.fromisoformat(case["logical_date"]) if case["logical_date"] else None
        run_after = dt.datetime.fromisoformat(case["run_after"])
        run_id = f"{case['run_type']}__{(logical or run_after).isoformat()}"
        dag_run = DagRun(
            dag_id=DAG_ID,
            run_id=run_id,
            logical_date=logical,
            data_interval_start=logical,
            data_interval_end=logical,
            run_after=run_after,
            start_date=run_after,
            end_date=None,
            run_type=DagRunType(case["run_type"]),
            state=DagRunState.RUNNING,
            consumed_asset_events=[],
            partition_key=None,
        )
        ti = RuntimeTaskInstance.model_construct(
            id=uuid.uuid4(),
            task_id=TASK_ID,
            dag_id=DAG_ID,
            run_id=run_id,
            try_number=1,
            dag_version_id=uuid.uuid4(),
            map_index=-1,
            task=task,
            bundle_instance=None,
            start_date=run_after,
            max_tries=task.retries,
        )
        ti._ti_context_from_server = TIRunContext(dag_run=dag_run, max_tries=task.retries)
        try:
            ti.render_templates()
        except Exception as exc:  # noqa: BLE001 - one case's failure is that case's result
            rendered[case["name"]] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        rendered[case["name"]] = {
            "application_args": ti.task.application_args,
            "env_vars": ti.task.env_vars,
            "conf": ti.task.conf,
            "application": ti.task.application,
            "py_files": ti.task.py_files,
        }
    return rendered


def main(argv: list[str]) -> int:
    dags_folder, out, *cases = argv
    bag, pulled = load_dag(dags_folder)
    result = {"describe": describe(bag, pulled), "rendered": {}}
    if cases and DAG_ID in bag.dags:
        result["rendered"] = render(bag, json.loads(Path(cases[0]).read_text()))
    Path(out).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
