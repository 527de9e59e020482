"""Checks of the market data assets.

Each asset audits its new partitions before publishing them (see ``defs/publishing.py``); these are
the checks it reports. All are blocking: a failure stops everything downstream.
"""

from __future__ import annotations

import dagster as dg
import numpy as np
import polars as pl

from alevor_assets.defs.publishing import contract_check_spec
from alevor_assets.lib.bars import SortedTrades, bar_spec
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


def validate_bars(bars: pl.DataFrame, trades: SortedTrades) -> ValidationReport:
    """The contract of one interval's bars, plus alignment and reconciliation with ``trades``
    (the trades the bars were built from)."""
    report = validate("bars", bars, ts_column="ts")
    report.failures += misaligned_bars(bars) + reconcile_bars(bars, trades)
    return report


def misaligned_bars(bars: pl.DataFrame) -> list[RuleFailure]:
    """Time bars must start at epoch multiples of their interval."""
    if bars.height == 0:
        return []
    failures = []
    for name in bars["interval"].unique(maintain_order=True).to_list():
        spec = bar_spec(str(name))
        if spec.kind != "time":
            continue
        part = bars.filter(pl.col("interval") == name) if bars["interval"].n_unique() > 1 else bars
        bad = part.filter(pl.col("ts").dt.epoch("us") % int(spec.size) != 0)
        if bad.height:
            failures.append(RuleFailure(
                rule=f"ts aligned to the {name} grid", column="ts", count=bad.height,
                examples=[{"row": None, **r} for r in bad.head(5).to_dicts()],
            ))
    return failures


def reconcile_bars(bars: pl.DataFrame, trades: SortedTrades) -> list[RuleFailure]:
    """Per token, every interval's bars must hold exactly the trades' count and volume."""
    n_tokens = len(trades.tokens)
    want_count, want_volume = trades.totals_by_token()
    failures = []
    for name in bars["interval"].unique(maintain_order=True).to_list():
        part = bars.filter(pl.col("interval") == name) if bars["interval"].n_unique() > 1 else bars
        # The bar builder's token codes when present (no string hashing); the names otherwise.
        codes = part["_code"] if "_code" in part.columns else part["token"].cast(pl.Enum(trades.tokens), strict=False).to_physical()
        if codes.null_count():
            unknown = part.filter(codes.is_null())["token"].unique().head(5).to_list()
            failures.append(RuleFailure(rule="bars only for tokens that traded", column="token", count=codes.null_count(),
                                        examples=[{"row": None, "interval": name, "token": t} for t in unknown]))
            continue
        idx = codes.to_numpy()
        got_count = np.bincount(idx, weights=part["trade_count"].to_numpy(), minlength=n_tokens)
        got_volume = np.bincount(idx, weights=part["volume"].to_numpy(), minlength=n_tokens)
        bad = np.flatnonzero((got_count != want_count) | (np.abs(got_volume - want_volume) > 1e-9 * np.abs(want_volume)))
        if len(bad):
            failures.append(RuleFailure(
                rule="bars reconcile with raw_trades (volume and trade_count per token and interval)",
                column=None, count=len(bad),
                examples=[{"row": None, "interval": name, "token": trades.tokens[int(i)], "bars_trade_count": int(got_count[i]),
                           "trades": int(want_count[i]), "bars_volume": float(got_volume[i]), "trades_volume": float(want_volume[i])}
                          for i in bad[:5]],
            ))
    return failures
