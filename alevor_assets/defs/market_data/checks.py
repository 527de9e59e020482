"""Checks of the market data assets.

Each asset audits its new partitions before publishing them (see ``defs/publishing.py``) with the
rules in ``lib/contract.py``; these are the checks it reports. The contract checks are blocking: a
failure stops everything downstream.
"""

from __future__ import annotations

import dagster as dg

from alevor_assets.defs.publishing import PartitionBatch, contract_check_spec

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


def skipped_rows_result(skipped: dict[str, int], batch: PartitionBatch) -> dg.AssetCheckResult:
    total = sum(skipped.values())
    where = str(batch.quarantined[0].parent) if batch.quarantined else ""
    return dg.AssetCheckResult(
        check_name=SKIPPED_ROWS_CHECK,
        passed=total == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{total} bad row(s) skipped" if total else "no rows skipped",
        metadata={"skipped_rows": total, "by_day": dg.MetadataValue.json(skipped), "quarantine": dg.MetadataValue.path(where)},
    )
