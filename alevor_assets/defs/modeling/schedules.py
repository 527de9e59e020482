"""Periodic retraining: one schedule per model spec, shipped stopped."""

import dagster as dg

from alevor_assets.lib.specs import ModelSpec, model_specs

# Mondays 04:00 UTC unless a spec sets `retrain: {cron: ...}`.
DEFAULT_RETRAIN_CRON = "0 4 * * 1"


def _schedule(spec: ModelSpec) -> dg.ScheduleDefinition:
    keys = [f"model_{spec.name}", f"validation_{spec.name}", f"promoted_model_{spec.name}"]
    job = dg.define_asset_job(f"retrain_{spec.name}", selection=dg.AssetSelection.assets(*keys),
                              description=f"Train and validate a new version of {spec.name}.")
    return dg.ScheduleDefinition(
        name=f"retrain_{spec.name}_schedule",
        job=job,
        cron_schedule=spec.retrain_cron or DEFAULT_RETRAIN_CRON,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Retrains {spec.name} on its latest window whatever the drift checks say.",
    )


RETRAIN_SCHEDULES = [_schedule(spec) for spec in model_specs()]
