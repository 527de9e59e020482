"""Features, labels and per-spec training rows."""

from collections.abc import Iterator, Mapping, Sequence

import dagster as dg

from alevor_assets.defs.automation import follow_upstream
from alevor_assets.defs.features.checks import FEATURES_CHECKS, LABELS_CHECKS, TRAINING_SET_CHECKS
from alevor_assets.defs.market_data.assets import bars, labelled_events, raw_trades, tokens
from alevor_assets.defs.partitions import daily_asset, following_days
from alevor_assets.defs.publishing import PartitionBatch
from alevor_assets.defs.resources import AlevorStorage, PipelineSettings
from alevor_assets.lib.contract import check_contract, check_training_rows
from alevor_assets.lib.day_builds import day_features, day_labels, day_training_rows, days_ahead
from alevor_assets.lib.specs import LabelSpec, ModelSpec, label_sets, model_specs
from alevor_assets.lib.training_set import row_features

GROUP = "features"
Result = Iterator[dg.MaterializeResult | dg.AssetCheckResult]


@daily_asset(
    group=GROUP,
    check_specs=FEATURES_CHECKS,
    # Same-day lineage only. The warm-up read from earlier days is context, not a tracked input:
    # tracking it would make every backfill also target the day after its range, which has no
    # bars yet (and a 1000-bar warm-up spans up to 400 days of coarse bars anyway).
    deps=[bars, raw_trades, tokens],
    automation_condition=follow_upstream(),
)
def features(context: dg.AssetExecutionContext, storage: AlevorStorage, settings: PipelineSettings) -> Result:
    """Feature snapshots per token and bar, for each feature interval: returns and volatility
    over bars and over wall-clock spans, per-second rates, order-flow imbalance, the standard
    indicators exactly as TA-Lib defines them (RSI, MACD, Bollinger, ATR), rush-trade and
    La Morgia pump features from the trades, multi-timeframe context from the last complete
    coarser bars, token age and time of day. Each value uses only data up to its own bar; a
    partition reads earlier days as warm-up, so it equals the continuous series."""
    intervals = settings.features()
    warmup = {j: settings.warmup_days(j) for j in settings.bars()}
    batch = PartitionBatch(storage, "features", context.run.run_id, sort_by=["token", "ts"])
    for day in batch.days(context, [("bars", {"interval": i}) for i in intervals]):
        for interval in intervals:
            batch.open_partition(day, {"interval": interval})
        for interval, part in day_features(storage.warehouse, day, intervals, settings.feature_config(), warmup):
            if batch.audit(day, part, check_contract("features", part, ts_column="ts")):
                batch.append(day, part, {"interval": interval})
    yield from batch.finish(context, {"intervals": ", ".join(intervals)})


def build_labels_asset(sets: Mapping[tuple[str, str], LabelSpec]) -> dg.AssetsDefinition:
    """The ``labels`` asset for these (interval, label set) pairs."""
    deps = [
        # The look-ahead is tracked (a day's last labels complete once the next day lands); the
        # look-back, like the features' warm-up, is context.
        dg.AssetDep(bars, partition_mapping=following_days(max(days_ahead(sets), 1))),
        labelled_events,
        tokens,
    ]

    # Later days may not exist yet (labels without a covered horizon wait for them): only the
    # day's tokens must exist.
    @daily_asset(name="labels", group=GROUP, check_specs=LABELS_CHECKS, deps=deps,
                 automation_condition=follow_upstream(require=dg.AssetSelection.assets(tokens)))
    def _labels(context: dg.AssetExecutionContext, storage: AlevorStorage) -> Result:
        """Training targets for every label set the model specs use (`strategy` names the set),
        with `weight`, `horizon_end` (the end of what each label looks at) and, for tradable
        strategies, `realized_return`. Forward-looking labels read the head of later days; a
        label whose horizon is not covered by data yet is left out until it is."""
        batch = PartitionBatch(storage, "labels", context.run.run_id, sort_by=["token", "ts"])
        for day in batch.days(context, [("bars", {"interval": i}) for i in sorted({i for i, _ in sets})]):
            for interval, set_name, frame in day_labels(storage.warehouse, day, sets):
                if batch.audit(day, frame, check_contract("labels", frame, ts_column="ts")):
                    batch.stage(day, frame, {"interval": interval, "strategy": set_name})
        yield from batch.finish(context, {"label_sets": ", ".join(f"{s}@{i}" for i, s in sets)})

    return _labels


def build_training_set_asset(specs: Sequence[ModelSpec], labels_asset: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """The ``training_set`` asset for these specs."""

    @daily_asset(name="training_set", group=GROUP, check_specs=TRAINING_SET_CHECKS, deps=[features, labels_asset],
                 automation_condition=follow_upstream())
    def _training_set(context: dg.AssetExecutionContext, storage: AlevorStorage) -> Result:
        """Per model spec (`spec`), the rows it trains on: the spec's features joined with its
        labels on (token, interval, ts), after the spec's filters (e.g. young tokens only)."""
        batch = PartitionBatch(storage, "training_set", context.run.run_id, sort_by=["token", "ts"])
        inputs = [("features", {"interval": s.interval}) for s in specs] + [
            ("labels", {"interval": s.interval, "strategy": s.label.set_name}) for s in specs
        ]
        for day in batch.days(context, inputs):
            for spec in specs:
                rows = day_training_rows(storage.warehouse, day, spec)
                if batch.audit(day, rows, check_training_rows(rows, row_features(rows))):
                    batch.stage(day, rows, {"spec": spec.name})
        yield from batch.finish(context, {"specs": ", ".join(s.name for s in specs)})

    return _training_set


labels = build_labels_asset(label_sets(model_specs()))
training_set = build_training_set_asset(model_specs(), labels)
