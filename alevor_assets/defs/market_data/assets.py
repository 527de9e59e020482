"""Market data: what the source says happened, and bars built from it."""

from collections.abc import Iterator
from datetime import date

import dagster as dg
import polars as pl
from pydantic import Field

from alevor_assets.defs.automation import follow_upstream
from alevor_assets.defs.market_data.checks import (
    BARS_CHECKS,
    EVENTS_CHECKS,
    RAW_TRADES_CHECKS,
    TOKENS_CHECKS,
    skipped_rows_result,
)
from alevor_assets.defs.partitions import daily_asset, following_days
from alevor_assets.defs.publishing import PartitionBatch, partition_days
from alevor_assets.defs.resources import AlevorStorage, PipelineSettings, TradeSource
from alevor_assets.lib.bars import BAR_SCHEMA, SortedTrades, bar_spec, iter_token_batches
from alevor_assets.lib.contract import check_bars, check_contract, check_trades, split_bad_rows
from alevor_assets.lib.empty_days import check_empty_day
from alevor_assets.lib.event_extents import day_events, extent_summary
from alevor_assets.lib.schemas import DATE_COLUMN

GROUP = "market_data"
Result = Iterator[dg.MaterializeResult | dg.AssetCheckResult]


@daily_asset(group=GROUP, check_specs=TOKENS_CHECKS)
def tokens(context: dg.AssetExecutionContext, storage: AlevorStorage, source: TradeSource) -> Result:
    """Token metadata as of each day: symbol, name, address and creation time (`created_at`, null
    when the source does not know it). Token age features and the early-pump filter use it."""
    batch = PartitionBatch(storage, "tokens", context.run.run_id, sort_by=["token"])
    for day in partition_days(context):
        frame = source.tokens(day).with_columns(pl.lit(day).alias(DATE_COLUMN))
        batch.add(day, frame, check_contract("tokens", frame))
    yield from batch.finish(context, {"source": source.describe()})


class RawTradesConfig(dg.Config):
    skip_bad_rows: bool = Field(
        default=False,
        description="Publish a day without the rows that break the contract instead of failing it. "
        "Skipped rows are counted in the metadata and kept in the quarantine directory.",
    )
    empty_days: list[str] = Field(
        default_factory=list,
        description="Days (YYYY-MM-DD) you state had no trades at all. Without this, a day without "
        "trades is refused while an input file is empty (0 bytes or a header only) or while the "
        "published day has trades.",
    )


@daily_asset(group=GROUP, check_specs=RAW_TRADES_CHECKS)
def raw_trades(
    context: dg.AssetExecutionContext, config: RawTradesConfig, storage: AlevorStorage, source: TradeSource
) -> Result:
    """Every trade of each UTC day as the source reported it: `token, trade_id, ts, price, amount,
    side` (the taker side). Checked before anything downstream runs; a bad day is quarantined,
    never published (or, with `skip_bad_rows`, published without its bad rows, which are counted
    and quarantined)."""
    batch = PartitionBatch(storage, "raw_trades", context.run.run_id, sort_by=["token", "ts", "trade_id"])
    skipped: dict[str, int] = {}
    stated_empty = {date.fromisoformat(d) for d in config.empty_days}
    for day in partition_days(context):
        got = source.read_trades(day)
        published = storage.warehouse.partition_rows("raw_trades", day)
        check_empty_day(day, got.trades.height + got.rejected.height, got.empty_inputs, published, day in stated_empty)
        frame = got.trades.with_columns(pl.lit(day).alias(DATE_COLUMN))
        report = check_trades(frame, got.rejected)
        if config.skip_bad_rows and (report.bad_rows or got.rejected.height):
            frame, bad = split_bad_rows(frame, report)
            batch.quarantine(day, bad, "skipped_rows")
            batch.quarantine(day, got.rejected, "rejected_lines")
            report = check_trades(frame)
            skipped[day.isoformat()] = bad.height + got.rejected.height
        batch.add(day, frame, report)
    yield from batch.finish(
        context,
        {"source": source.describe(), "skipped_rows": sum(skipped.values())},
        extra_checks=[skipped_rows_result(skipped, batch)],
    )


@daily_asset(
    group=GROUP,
    check_specs=EVENTS_CHECKS,
    # A pump announced late in the day peaks after midnight: the next day's trades are tracked
    # (and may not exist yet); the reference price before the window is context, like warm-up.
    deps=[dg.AssetDep(raw_trades, partition_mapping=following_days(1))],
    automation_condition=follow_upstream(require=dg.AssetSelection.assets()),
)
def labelled_events(
    context: dg.AssetExecutionContext, storage: AlevorStorage, source: TradeSource, settings: PipelineSettings
) -> Result:
    """Known pump and dump episodes that overlap each day: the synthetic market's ground truth, or
    your own events file or table. An event listed with only its announced start gets its extent
    from the trades (`extent` derived: from the announcement, or an earlier breakout, to the peak);
    one that did not move the price is kept as `flat` (or `no_data`), listed in this metadata,
    and left out of the labels. Supervised pump label strategies learn from them."""
    rules = settings.extent_rules()
    batch = PartitionBatch(storage, "labelled_events", context.run.run_id, sort_by=["token", "start_time", "type"])
    frames = []
    for day in partition_days(context):
        frame = day_events(storage.warehouse, day, source.labelled_events(day, rules.reach), rules)
        frame = frame.with_columns(pl.lit(day).alias(DATE_COLUMN))
        batch.add(day, frame, check_contract("labelled_events", frame))
        frames.append(frame)
    counts, unmoved = extent_summary(pl.concat(frames))
    yield from batch.finish(context, {
        "source": source.describe(), "events_by_extent": dg.MetadataValue.json(counts),
        "unmoved_events": dg.MetadataValue.md(unmoved),
    })


@daily_asset(group=GROUP, check_specs=BARS_CHECKS, deps=[raw_trades], automation_condition=follow_upstream())
def bars(
    context: dg.AssetExecutionContext, storage: AlevorStorage, settings: PipelineSettings
) -> Result:
    """OHLCV bars per token: time bars for every configured interval (2 s up to 1 d), plus volume
    and dollar bars for the configured thresholds. Open and close are the first and last trade by
    (ts, trade_id), time bars start at epoch multiples of the interval, and only buckets with
    trades exist. Volumes and trade counts reconcile exactly with raw_trades."""
    names = settings.bar_names()
    specs = [bar_spec(n) for n in names]
    batch = PartitionBatch(storage, "bars", context.run.run_id, sort_by=["token", "ts"])
    for day in partition_days(context):
        path = storage.warehouse.require("raw_trades", day)
        for name in names:
            batch.open_partition(day, {"interval": name}, BAR_SCHEMA)
        # Whole tokens at a time keep a 50 M-trade day within a few hundred MB.
        for trades in iter_token_batches(path):
            sorted_trades = SortedTrades.from_frame(trades)
            for name, part in sorted_trades.bars_by_spec(specs, with_codes=True).items():
                part = part.with_columns(pl.lit(day).alias(DATE_COLUMN))
                if batch.audit(day, part, check_bars(part, sorted_trades)):
                    batch.append(day, part, {"interval": name})
    yield from batch.finish(context, {"intervals": ", ".join(names)})

