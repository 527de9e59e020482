"""The live loop: poll the source, tick the engine, hand alerts to delivery, until stopped."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

import polars as pl

from alevor_assets.lib.live.delivery import Delivery
from alevor_assets.lib.live.engine import LiveEngine
from alevor_assets.lib.live.source import TradeStream
from alevor_assets.lib.sources import SourceError


def now_us() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1_000_000)


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%H:%M:%S")


def run_live(stream: TradeStream, engine: LiveEngine, delivery: Delivery, *, tick_seconds: float,
             wall_clock: bool = True, on_alerts: Callable[[pl.DataFrame], None] | None = None,
             stop: threading.Event | None = None, log: Callable[[str], None] = print) -> None:
    """Tick every ``tick_seconds`` (or as soon as the previous tick ends, when it took longer)
    until ``stop`` is set or SIGTERM/SIGINT arrives. ``wall_clock=False`` closes bars by trade
    time only (replaying a past day)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    delivery.start()
    total, last_report = 0, 0.0
    try:
        while not stop.is_set():
            began = time.monotonic()
            try:
                trades = stream.poll()
            except SourceError as exc:  # the database is away: keep what we have, try again
                log(f"{_stamp()} reading new trades failed, retrying: {exc}")
                stop.wait(tick_seconds)
                continue
            result = engine.tick(trades, now_us() if wall_clock else None)
            total += result.trades
            while engine.market.warnings:
                log(f"{_stamp()} WARNING {engine.market.warnings.pop(0)}")
            if result.alerts.height:
                delivery.submit(result.alerts)
                if on_alerts is not None:
                    on_alerts(result.alerts)
                for row in result.alerts.iter_rows(named=True):
                    log(f"{_stamp()} ALERT {row['spec']} {row['token']} bar {row['ts']:%Y-%m-%d %H:%M:%S} "
                        f"score {row['score']:.3f} >= {row['threshold']:.3f} "
                        f"({'v' + str(row['version']) if row['version'] is not None else row['source']})")
            if time.monotonic() - last_report >= 10 or result.seconds > tick_seconds:
                last_report = time.monotonic()
                scored = ", ".join(f"{k} to {datetime.fromtimestamp(v[1] / 1e6, timezone.utc):%H:%M:%S}" for k, v in result.scored.items())
                log(f"{_stamp()} tick: {result.trades} new trade(s), {total} read, {engine.market.pending_trades} pending, "
                    f"scored {scored or 'nothing new'}, {result.seconds:.2f} s; too late: {engine.market.too_late}")
            stop.wait(max(0.0, tick_seconds - (time.monotonic() - began)))
    finally:
        delivery.stop()
