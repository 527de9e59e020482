"""Checks of the market data assets.

Each asset audits its new partitions before publishing them (see ``defs/publishing.py``); these are
the checks it reports. All are blocking: a failure stops everything downstream.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from alevor_assets.defs.publishing import contract_check_spec
from alevor_assets.lib.schemas import ORIGIN_COLUMN, RuleFailure, ValidationReport, validate

TOKENS_CHECKS = [contract_check_spec("tokens")]
EVENTS_CHECKS = [contract_check_spec("labelled_events")]
SKIPPED_ROWS_CHECK = "check_no_skipped_rows"
RAW_TRADES_CHECKS = [
    dg.AssetCheckSpec(
        SKIPPED_ROWS_CHECK,
        asset="raw_trades",
        description="Warns when a run published raw_trades with skip_bad_rows on and rows were "
        "skipped; the metadata counts them per day and points at the quarantined rows.",
    ),
    contract_check_spec(
        "raw_trades",
        "Every new raw_trades partition: contract types, price and amount finite and > 0, side "
        "buy|sell, (token, trade_id) unique, every ts inside its partition's UTC day. Failures "
        "name the rule, the column, the count and example rows with their source file/line or id.",
    )
]
BARS_CHECKS = [
    contract_check_spec(
        "bars",
        "Every new bars partition: contract types, low <= open/close/vwap <= high, buy + sell = "
        "volume, unique (token, interval, ts), and, per token and interval, volume and trade "
        "count equal to the day's raw trades.",
    )
]


def skipped_rows_result(skipped: dict[str, int], batch) -> dg.AssetCheckResult:
    total = sum(skipped.values())
    where = str(batch.quarantined[0].parent) if batch.quarantined else ""
    return dg.AssetCheckResult(
        check_name=SKIPPED_ROWS_CHECK,
        passed=total == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{total} bad row(s) skipped" if total else "no rows skipped",
        metadata={"skipped_rows": total, "by_day": dg.MetadataValue.json(skipped), "quarantine": dg.MetadataValue.path(where)},
    )


def validate_trades(trades: pl.DataFrame) -> ValidationReport:
    return validate("raw_trades", trades, ts_column="ts")


def validate_bars(bars: pl.DataFrame, trades: pl.DataFrame) -> ValidationReport:
    report = validate("bars", bars, ts_column="ts")
    report.failures += reconcile_bars(bars, trades)
    return report


def reconcile_bars(bars: pl.DataFrame, trades: pl.DataFrame) -> list[RuleFailure]:
    """Per token and interval, the bars' volume and trade count must equal the trades'."""
    if bars.height == 0 and trades.height == 0:
        return []
    truth = trades.group_by("token").agg(
        pl.col("amount").sum().alias("trades_volume"), pl.len().cast(pl.Int64).alias("trades_count")
    )
    got = bars.group_by("token", "interval").agg(
        pl.col("volume").sum().alias("bars_volume"), pl.col("trade_count").sum().alias("bars_count")
    )
    intervals = bars.select(pl.col("interval").unique())
    expected = truth.join(intervals, how="cross") if intervals.height else truth.with_columns(interval=pl.lit(None, pl.Utf8))
    joined = expected.join(got, on=["token", "interval"], how="full", coalesce=True).fill_null(0)
    bad = joined.filter(
        (pl.col("bars_count") != pl.col("trades_count"))
        | ((pl.col("bars_volume") - pl.col("trades_volume")).abs() > 1e-9 * pl.col("trades_volume").abs().clip(lower_bound=1e-300))
    )
    if bad.height == 0:
        return []
    examples = [
        {"row": None, **{k: v for k, v in r.items() if k != ORIGIN_COLUMN}} for r in bad.head(5).to_dicts()
    ]
    return [
        RuleFailure(
            rule="bars reconcile with raw_trades (volume and trade_count per token and interval)",
            column=None,
            count=bad.height,
            examples=examples,
        )
    ]
