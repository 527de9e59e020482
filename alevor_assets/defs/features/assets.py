"""Feature snapshots of every feature interval (labels and training rows are per spec: defs/modeling)."""

from collections.abc import Iterator

import dagster as dg

from alevor_assets.defs.automation import follow_upstream
from alevor_assets.defs.features.checks import FEATURES_CHECKS
from alevor_assets.defs.market_data.assets import bars, raw_trades, tokens
from alevor_assets.defs.partitions import daily_asset
from alevor_assets.defs.publishing import PartitionBatch
from alevor_assets.defs.resources import AlevorStorage, PipelineSettings
from alevor_assets.lib.contract import check_contract
from alevor_assets.lib.day_builds import day_features

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
