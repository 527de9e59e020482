"""The code location: everything under ``defs/`` plus resources, the executor (in process, or
Celery workers with ALEVOR_EXECUTOR=celery: defs/execution.py says why) and the automation sensor."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from alevor_assets.defs.execution import run_executor
from alevor_assets.defs.resources import build_resources


# Evaluates every asset's automation condition once a tick (see defs/automation.py). Shipped
# stopped: turn it on in the UI (Automation) or with `dagster sensor start automation_sensor`.
# A tick that requests several days of one asset (a promotion rescoring the last N days, a
# late-corrected week) emits a backfill: the assets' single-run policy makes that one run over the
# range, where plain run requests would start one run per day, each re-reading the warm-up.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=30,
    emit_backfills=True,
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(resources=build_resources(), executor=run_executor(), sensors=[automation_sensor]),
    )
