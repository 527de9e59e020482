"""``predictions_<spec>``: what the spec's promoted model says about every bar of each day."""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from alevor_assets.defs.automation import score_new_data_and_promotions
from alevor_assets.defs.features.assets import features
from alevor_assets.defs.modeling.metadata import recorded_version
from alevor_assets.defs.partitions import daily_asset
from alevor_assets.defs.publishing import PartitionBatch, contract_check_spec
from alevor_assets.defs.resources import AlevorStorage
from alevor_assets.lib.contract import check_contract
from alevor_assets.lib.day_builds import day_predictions
from alevor_assets.lib.schemas import SCHEMAS
from alevor_assets.lib.serving import ServingModel, load_serving_model
from alevor_assets.lib.specs import ModelSpec

SERVED_CHECK = "check_served_by_model"
LIVE_DRIFT_CHECK = "check_live_drift"


def _checks(spec: ModelSpec) -> list[dg.AssetCheckSpec]:
    asset = spec.predictions_asset
    return [
        contract_check_spec(asset, "Every new partition: unique (token, interval, ts), scores finite or null, "
                            "model rows name their version and fallback rows their reason."),
        dg.AssetCheckSpec(SERVED_CHECK, asset=asset, description=(
            f"Warns when any row was scored by the fallback (`{spec.serving.fallback}`) instead of the promoted "
            "model: no promoted version, a tampered artifact, or features the model needs are missing.")),
        dg.AssetCheckSpec(LIVE_DRIFT_CHECK, asset=asset, description=(
            f"Warns when a day's features or scores drifted from the model's training-time distributions "
            f"(PSI above {spec.drift_psi_threshold}); the metadata lists each day's PSI.")),
    ]


def _loader(storage: AlevorStorage, spec: ModelSpec, version: int | None) -> Any:
    loaded: list[ServingModel] = []

    def load() -> ServingModel:
        if version is None:
            raise LookupError(f"{spec.name} has no promoted version yet")
        if not loaded:  # once per run: loading checks the artifact's sha256
            loaded.append(load_serving_model(storage.registry, spec.name, version))
        return loaded[0]

    return load


def build_predictions_asset(spec: ModelSpec, promoted_asset: dg.AssetsDefinition) -> dg.AssetsDefinition:
    promoted = promoted_asset.key

    @daily_asset(
        name=spec.predictions_asset, group=spec.name, check_specs=_checks(spec), deps=[features, promoted],
        automation_condition=score_new_data_and_promotions(features.key, promoted, spec.serving.rescore_days),
        description=(
            f"`{spec.name}` scores of every {spec.interval} bar: `score` (probability, or predicted value), "
            "`predicted` (the decision at the model's threshold, or the class), the `version` that scored it, "
            f"and `source` = model, or fallback (`{spec.serving.fallback}`) with the `reason`. Scored by the "
            f"version `promoted_model_{spec.name}` recorded; a promotion rescores the newest "
            f"{spec.serving.rescore_days} days."
        ),
    )
    def _predictions(context: dg.AssetExecutionContext, storage: AlevorStorage) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        # The version Dagster recorded as promoted, not whatever is newest on disk.
        version = recorded_version(context, promoted)
        load = _loader(storage, spec, version)
        batch = PartitionBatch(storage, spec.predictions_asset, context.run.run_id, sort_by=["token", "ts"])
        monitoring: dict[str, dict[str, Any]] = {}
        for day in batch.days(context, [("features", {"interval": spec.interval})]):
            frame, monitoring[day.isoformat()] = day_predictions(storage.warehouse, spec, day, load)
            batch.add(day, frame, check_contract(spec.predictions_asset, frame, schema=SCHEMAS["predictions"]))
        yield from batch.finish(context, {"promoted_version": version, "monitoring": dg.MetadataValue.json(monitoring)},
                                extra_checks=serving_checks(spec, monitoring))

    return _predictions


def serving_checks(spec: ModelSpec, monitoring: dict[str, dict[str, Any]]) -> list[dg.AssetCheckResult]:
    fallback_days = {d: m["scores"]["fallback_rows"] for d, m in monitoring.items() if m["scores"]["fallback_rows"]}
    limit = spec.drift_psi_threshold
    drifted = {
        d: m["drift"] for d, m in monitoring.items()
        if "drift" in m and any(v is not None and v > limit for v in (m["drift"]["score_psi"], m["drift"]["max_feature_psi"]))
    }
    return [
        dg.AssetCheckResult(
            check_name=SERVED_CHECK, passed=not fallback_days, severity=dg.AssetCheckSeverity.WARN,
            description=(f"fallback rows on {', '.join(sorted(fallback_days))}" if fallback_days else "every row scored by the model"),
            metadata={"fallback_rows_by_day": dg.MetadataValue.json(fallback_days)},
        ),
        dg.AssetCheckResult(
            check_name=LIVE_DRIFT_CHECK, passed=not drifted, severity=dg.AssetCheckSeverity.WARN,
            description=(f"PSI above {limit} on {', '.join(sorted(drifted))}" if drifted else f"no day's PSI above {limit}"),
            metadata={"drift_by_day": dg.MetadataValue.json({d: m.get("drift") for d, m in monitoring.items()})},
        ),
    ]
