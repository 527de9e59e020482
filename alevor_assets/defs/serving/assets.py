"""``alerts``: the detectors' alerts of each day, one per token and episode."""

from collections.abc import Iterator, Sequence

import dagster as dg

from alevor_assets.defs.automation import follow_upstream
from alevor_assets.defs.partitions import daily_asset
from alevor_assets.defs.publishing import PartitionBatch, contract_check_spec
from alevor_assets.defs.resources import AlevorStorage
from alevor_assets.lib.contract import check_contract
from alevor_assets.lib.day_builds import day_alerts
from alevor_assets.lib.specs import ModelSpec, model_specs


def build_alerts_asset(specs: Sequence[ModelSpec]) -> dg.AssetsDefinition:
    detectors = [s for s in specs if s.detects_events]
    deps = [
        # The day before is read too (an episode that began before midnight alerts once): tracked.
        dg.AssetDep(s.predictions_asset, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, allow_nonexistent_upstream_partitions=True))
        for s in detectors
    ]

    @daily_asset(
        name="alerts", group="serving", deps=deps,
        check_specs=[contract_check_spec("alerts", "Every new partition: one alert per (spec, token, ts), scores finite.")],
        # A day's alerts are built from whichever detectors have predictions for it.
        automation_condition=follow_upstream(require=dg.AssetSelection.assets()),
        description=(
            "Alerts of the detectors (" + ", ".join(f"`{s.name}`" for s in detectors) + "): a row's score at or above its "
            "threshold (the scoring version's, or 0.5 for a fallback rule) raises an alert unless its token alerted "
            "within the spec's `alerts.cooldown`; with the token, the bar (`ts`) and when it closed (`alerted_at`), "
            "score, threshold, spec, version or fallback reason, and the row's top contributing features."
        ),
    )
    def alerts(context: dg.AssetExecutionContext, storage: AlevorStorage) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        batch = PartitionBatch(storage, "alerts", context.run.run_id, sort_by=["ts", "token", "spec"])
        missing: dict[str, dict[str, str]] = {}
        for day in batch.days(context, []):
            frame, missing[day.isoformat()] = day_alerts(storage.warehouse, storage.registry, detectors, day)
            batch.add(day, frame, check_contract("alerts", frame, ts_column="ts"))
        yield from batch.finish(context, {"detectors": ", ".join(s.name for s in detectors),
                                          "missing_predictions": dg.MetadataValue.json({d: m for d, m in missing.items() if m})})

    return alerts


ALERTS = build_alerts_asset(model_specs())
