"""`new_trades_sensor`: rebuild exactly the days whose trades changed at the source."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import dagster as dg

from alevor_assets.defs.market_data.assets import labelled_events, raw_trades, tokens
from alevor_assets.defs.partitions import daily_partitions
from alevor_assets.defs.resources import TradeSource
from alevor_assets.lib.change_detection import changed_days
from alevor_assets.lib.config import pipeline_settings

LOOKBACK_DAYS = int((pipeline_settings().get("sensors") or {}).get("lookback_days", 3))
TARGETS = [raw_trades, tokens, labelled_events]


def requests_for(previous: dict[str, str], current: dict[str, str], valid_days: set[str]) -> list[dg.RunRequest]:
    """One run per changed day; the run key names the day and its fingerprint, so a repeated or
    crashed tick asks for nothing twice."""
    return [
        dg.RunRequest(
            run_key=f"trades:{day}:{current.get(day, 'gone')}",
            partition_key=day,
            asset_selection=[a.key for a in TARGETS],
            tags={"alevor/trigger": "new_trades_sensor"},
        )
        for day in changed_days(previous, current)
        if day in valid_days
    ]


@dg.sensor(
    name="new_trades_sensor",
    target=TARGETS,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Polls the active trade source and requests raw_trades (with tokens and labelled_events) "
        "for exactly the UTC days whose trades changed: per-day fingerprints over the newest "
        f"{LOOKBACK_DAYS} days for PostgreSQL (count, max and sum of ids and a sum of row hashes, "
        "so late commits with smaller ids or earlier timestamps and corrected trades are caught), file modification times and sizes for "
        "files. Downstream assets follow through their automation conditions."
    ),
)
def new_trades_sensor(context: dg.SensorEvaluationContext, source: TradeSource) -> dg.SensorResult | dg.SkipReason:
    current = source.day_fingerprints(LOOKBACK_DAYS)
    if current is None:
        return dg.SkipReason(f"{source.describe()} has no change feed (it never changes)")
    if context.cursor:
        previous = json.loads(context.cursor)["days"]
    else:
        # The first tick has nothing to compare with: days already built are taken as they are
        # (their fingerprints become the baseline), days never built are requested.
        built = context.instance.get_materialized_partitions(raw_trades.key)
        previous = {d: fp for d, fp in current.items() if d in built}
    if current:
        # Days before the look-back window are settled: neither compared nor kept.
        oldest = min(current)
        previous = {d: fp for d, fp in previous.items() if d >= oldest}
    # Partitions are UTC days; today's is not complete yet.
    today = datetime.now(timezone.utc).date().isoformat()
    valid = {d for d in set(current) | set(previous) if daily_partitions.start.date().isoformat() <= d < today}
    requests = requests_for(previous, current, valid)
    if requests:
        context.log.info(f"trades changed on {', '.join(r.partition_key for r in requests)}")
    return dg.SensorResult(run_requests=requests, cursor=json.dumps({"days": current}, sort_keys=True))
