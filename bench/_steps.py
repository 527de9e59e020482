"""``python -m bench._steps``: every step of every run of the instance in $DAGSTER_HOME as JSON
lines, with the Celery worker that ran it and the times read from the event log: submitted (the
run's executor sent the task), picked (a worker began it), started/ended (STEP_START and
STEP_SUCCESS or STEP_FAILURE), and each run's start and end."""

from __future__ import annotations

import json

import dagster as dg
from dagster._core.events import DagsterEventType


def main() -> None:
    with dg.DagsterInstance.get() as instance:
        for run in instance.get_runs():
            stats = instance.get_run_stats(run.run_id)
            steps: dict[str, dict] = {}
            for record in instance.all_logs(run.run_id):
                event = record.dagster_event
                if event is None or event.step_key is None:
                    continue
                step = steps.setdefault(event.step_key, {"run": run.run_id, "step": event.step_key, "status": None})
                t = record.timestamp
                if event.event_type == DagsterEventType.ENGINE_EVENT:
                    message = event.message or ""
                    metadata = event.event_specific_data.metadata or {}
                    if message.startswith("Submitting celery task"):
                        step["submitted"] = t
                    elif "Celery worker" in metadata:
                        step["picked"], step["worker"] = t, metadata["Celery worker"].value
                elif event.event_type == DagsterEventType.STEP_START:
                    step["started"] = t
                elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                    step["ended"], step["status"] = t, event.event_type.value
            print(json.dumps({"run": run.run_id, "status": run.status.value, "run_start": stats.start_time,
                              "run_end": stats.end_time, "launched": stats.launch_time, "steps": list(steps.values()),
                              "range": [run.tags.get("dagster/asset_partition_range_start"),
                                        run.tags.get("dagster/asset_partition_range_end")]}))


if __name__ == "__main__":
    main()
