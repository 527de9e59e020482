"""``live``: the live alerting service (README "Live alerts")."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, datetime, timedelta, timezone
from typing import Any

from alevor_assets.lib.config import pipeline_settings
from alevor_assets.lib.intervals import day_start_us, duration_us


def add_commands(sub: Any) -> None:
    live = sub.add_parser("live", help="score new trades as they are committed and raise alerts (PostgreSQL or files source)")
    live.add_argument("--day", type=date.fromisoformat, default=None,
                      help="the UTC day to start from (default: today); trades from its midnight on are read")
    live.add_argument("--trade-clock", action="store_true",
                      help="close bars by trade time only, not the wall clock (replaying a past day)")
    live.set_defaults(func=live_command)


def live_command(args: argparse.Namespace) -> int:
    from alevor_assets.defs.partitions import start_date
    from alevor_assets.defs.resources import FilesSource, PostgresSource, build_resources
    from alevor_assets.lib.live.delivery import Delivery
    from alevor_assets.lib.live.engine import LiveEngine
    from alevor_assets.lib.live.market import LiveMarket
    from alevor_assets.lib.live.source import FileWindowReader, TradeStream, WindowReader
    from alevor_assets.lib.live.service import run_live
    from alevor_assets.lib.live.store import LiveStore
    from alevor_assets.lib.specs import model_specs

    resources = build_resources()
    source = resources["source"].process_config_and_initialize()
    if not isinstance(source, (PostgresSource, FilesSource)):
        print("live reads the PostgreSQL source (ALEVOR_SOURCE=postgres and ALEVOR_PG_URL) or files "
              "(ALEVOR_SOURCE=files and ALEVOR_FILES)", file=sys.stderr)
        return 2
    storage = resources["storage"].process_config_and_initialize()
    settings = resources["settings"].process_config_and_initialize()
    cfg = pipeline_settings().get("live") or {}
    tick, late = duration_us(str(cfg.get("tick", "1s"))) / 1e6, timedelta(microseconds=duration_us(str(cfg.get("late_commit", "5s"))))
    detectors = [s for s in model_specs() if s.detects_events]
    if not detectors:
        print("no detector spec to serve", file=sys.stderr)
        return 2
    day = args.day or datetime.now(timezone.utc).date()
    base = source.reader()
    reader = (FileWindowReader(base) if isinstance(source, FilesSource)
              else WindowReader(base.url, base.layout, chunk_rows=base.chunk_rows, retries=base.retries))
    config = settings.feature_config()
    market = LiveMarket(storage.warehouse, settings.warmup_needs(start_date()), config, [s.interval for s in detectors], day)
    store = LiveStore(storage.root)
    engine = LiveEngine(market, detectors, storage.registry, store, late, tokens_of=lambda: reader.tokens(day), wh=storage.warehouse)
    delivery = Delivery(store, os.environ.get("ALEVOR_ALERT_COMMAND") or None, os.environ.get("ALEVOR_ALERT_WEBHOOK") or None,
                        log=lambda m: print(m, flush=True))
    stream = TradeStream(reader, day_start_us(day), engine.late_us)
    refreshed: list[bool] = []

    instance = _instance()

    def first_alerts(alerts: Any) -> None:
        if not refreshed:  # the catalog's alerts view then covers the live files too
            refreshed.append(True)
            storage.catalog.try_refresh()
        if instance is not None:
            observe_live_alerts(instance, alerts)

    print(f"live: {', '.join(s.name for s in detectors)} on {reader.where} from {day} 00:00 UTC; tick {tick:g} s, "
          f"late commits up to {late.total_seconds():g} s; alerts in {store.alerts_dir}", flush=True)
    # Files land in batches, often well after their trades: their bars close by trade time, or the
    # wall clock would close them before the file is there.
    files = isinstance(source, FilesSource)
    run_live(stream, engine, delivery, tick_seconds=tick, wall_clock=not (args.trade_clock or files), on_alerts=first_alerts,
             log=lambda m: print(m, flush=True))
    return 0


def _instance() -> Any:
    """The Dagster instance of $DAGSTER_HOME (where the UI looks), or None without one."""
    if not os.environ.get("DAGSTER_HOME"):
        return None
    import dagster as dg

    return dg.DagsterInstance.get()


def observe_live_alerts(instance: Any, alerts: Any) -> None:
    """Record a tick's live alerts as an observation of the ``alerts`` asset (its day's
    partition), so the UI lists them in the asset's events beside the daily materializations.
    Failing to record is a warning, never a stopped service."""
    import dagster as dg

    try:
        for day, rows in alerts.group_by(alerts["ts"].dt.date().alias("_day")):
            table = rows.select("spec", "token", "ts", "score", "threshold", "version", "source")
            instance.report_runless_asset_event(dg.AssetObservation(
                asset_key="alerts", partition=day[0].isoformat(),
                description=f"{rows.height} live alert(s)",
                metadata={"mode": "live", "alerts": dg.MetadataValue.md(_markdown(table)), "count": rows.height},
            ))
    except Exception as exc:  # noqa: BLE001 - the UI record is a convenience
        print(f"could not record live alerts in the Dagster instance: {exc}", file=sys.stderr, flush=True)


def _markdown(frame: Any) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.width]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines)
