"""Each spec's own training data: ``labels_<spec>`` and ``training_set_<spec>``.

They belong to the spec's group, so a broken rule in one spec's labels or training rows stops that
spec only; every other spec goes on.
"""

from collections.abc import Iterator

import dagster as dg

from alevor_assets.defs.automation import follow_upstream
from alevor_assets.defs.features.assets import features
from alevor_assets.defs.market_data.assets import bars, labelled_events, tokens
from alevor_assets.defs.partitions import daily_asset, following_days
from alevor_assets.defs.publishing import PartitionBatch, contract_check_spec
from alevor_assets.defs.resources import AlevorStorage
from alevor_assets.lib.contract import check_contract, check_training_rows
from alevor_assets.lib.day_builds import day_labels, day_training_rows, days_ahead
from alevor_assets.lib.schemas import SCHEMAS
from alevor_assets.lib.specs import ModelSpec
from alevor_assets.lib.training_set import row_features

Result = Iterator[dg.MaterializeResult | dg.AssetCheckResult]


def build_labels_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    """``labels_<spec>``: the spec's training targets."""
    checks = [contract_check_spec(
        spec.labels_asset,
        "Every new partition: unique keys, finite labels, weight >= 0, and horizon_end after ts: a label "
        "only ever looks forward from its bar.",
    )]
    deps = [
        # The look-ahead is tracked (a day's last labels complete once the next day lands); the
        # look-back, like the features' warm-up, is context.
        dg.AssetDep(bars, partition_mapping=following_days(max(days_ahead(spec), 1))),
        labelled_events,
        tokens,
    ]

    # Later days may not exist yet (labels without a covered horizon wait for them): only the
    # day's tokens must exist.
    @daily_asset(
        name=spec.labels_asset, group=spec.name, check_specs=checks, deps=deps,
        automation_condition=follow_upstream(require=dg.AssetSelection.assets(tokens)),
        description=(
            f"Training targets of `{spec.name}`: `{spec.label.strategy}` labels on {spec.interval} bars, with `weight`, "
            "`horizon_end` (the end of what each label looks at) and, for tradable strategies, "
            "`realized_return`. Forward-looking labels read the head of later days; a label whose horizon "
            "is not covered by data yet is left out until it is."
        ),
    )
    def _labels(context: dg.AssetExecutionContext, storage: AlevorStorage) -> Result:
        batch = PartitionBatch(storage, spec.labels_asset, context.run.run_id, sort_by=["token", "ts"])
        for day in batch.days(context, [("bars", {"interval": spec.interval})]):
            frame = day_labels(storage.warehouse, day, spec)
            batch.add(day, frame, check_contract(spec.labels_asset, frame, schema=SCHEMAS["labels"], ts_column="ts"))
        yield from batch.finish(context, {"spec": spec.name, "strategy": spec.label.strategy})

    return _labels


def build_training_set_asset(spec: ModelSpec, labels_asset: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """``training_set_<spec>``: the rows the spec trains on."""
    checks = [contract_check_spec(
        spec.training_set_asset,
        "Every new partition: unique keys, finite labels, positive weights, and no label leakage: no "
        "feature equals the label, or correlates with it almost perfectly (on at least "
        "500 rows), as a feature computed from the future would.",
    )]

    @daily_asset(
        name=spec.training_set_asset, group=spec.name, check_specs=checks, deps=[features, labels_asset],
        automation_condition=follow_upstream(),
        description=(
            f"The rows `{spec.name}` trains on: its {spec.interval} features joined with `{spec.labels_asset}` on "
            "(token, interval, ts), after the spec's filters."
        ),
    )
    def _training_set(context: dg.AssetExecutionContext, storage: AlevorStorage) -> Result:
        batch = PartitionBatch(storage, spec.training_set_asset, context.run.run_id, sort_by=["token", "ts"])
        for day in batch.days(context, [("features", {"interval": spec.interval}), (spec.labels_asset, None)]):
            rows = day_training_rows(storage.warehouse, day, spec)
            batch.add(day, rows, check_training_rows(rows, row_features(rows), spec.training_set_asset))
        yield from batch.finish(context, {"spec": spec.name})

    return _training_set
