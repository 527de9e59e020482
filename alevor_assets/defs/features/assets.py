"""Feature snapshots of every feature interval (labels and training rows are per spec: defs/modeling)."""

from collections.abc import Iterator

import dagster as dg

from alevor_assets.defs.automation import follow_upstream
from alevor_assets.defs.features.checks import FEATURES_CHECKS
from alevor_assets.defs.market_data.assets import bars, raw_trades, tokens
from alevor_assets.defs.partitions import daily_asset, daily_partitions
from alevor_assets.defs.publishing import PartitionBatch
from alevor_assets.defs.resources import AlevorStorage, PipelineSettings
from alevor_assets.lib.contract import check_contract
from alevor_assets.lib.day_builds import day_features
from alevor_assets.lib.feature_catalog import feature_schema
from alevor_assets.lib.warmup import History

GROUP = "features"
Result = Iterator[dg.MaterializeResult | dg.AssetCheckResult]


@daily_asset(
    group=GROUP,
    check_specs=FEATURES_CHECKS,
    # Same-day lineage only. The warm-up read from earlier days is context, not a tracked input
    # (README "Backfills" says why); a day whose warm-up reaches a day never materialized is not
    # built, so its content never depends on the order ranges were built in.
    deps=[bars, raw_trades, tokens],
    automation_condition=follow_upstream(),
)
def features(context: dg.AssetExecutionContext, storage: AlevorStorage, settings: PipelineSettings) -> Result:
    """Feature snapshots per token and bar, for each feature interval: returns and volatility
    over bars and over wall-clock spans, per-second rates, order-flow imbalance, the standard
    indicators exactly as TA-Lib defines them (RSI, MACD, Bollinger, ATR), rush-trade and
    La Morgia pump features from the trades, multi-timeframe context from the last complete
    coarser bars, token age and time of day. Each value uses only data up to its own bar; each
    token reads earlier days until every window is full, so a partition equals the continuous
    series. A token silent for `max_gap` days starts a new series."""
    intervals, config = settings.features(), settings.feature_config()
    needed = list(dict.fromkeys(j for i in intervals for j in [i, *config.coarser(i)]))
    history = History(storage.warehouse, settings.warmup_needs(daily_partitions.start.date()))
    batch = PartitionBatch(storage, "features", context.run.run_id, sort_by=["token", "ts"])
    inputs = [("bars", {"interval": i}) for i in needed]
    for day in batch.days(context, inputs, ready=lambda d: history.plan(d, needed).reason()):
        for interval in intervals:
            batch.open_partition(day, {"interval": interval}, feature_schema(interval, config))
        for interval, part in day_features(storage.warehouse, day, intervals, config, history.plan(day, needed)):
            if batch.audit(day, part, check_contract("features", part, ts_column="ts")):
                batch.append(day, part, {"interval": interval})
    yield from batch.finish(context, {"intervals": ", ".join(intervals)})
