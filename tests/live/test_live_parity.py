"""Acceptance 1 of the live path: for the trades of a day committed in pieces, the live scores and
alerts equal the day's ``predictions_<spec>`` and ``alerts`` partitions, exactly."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from alevor_assets.defs.resources import AlevorStorage

from alevor_assets.lib.live.engine import LiveEngine
from alevor_assets.lib.live.market import LiveMarket
from alevor_assets.lib.live.source import TradeStream, WindowReader
from alevor_assets.lib.live.store import LiveStore
from alevor_assets.lib.intervals import day_start_us
from alevor_assets.lib.serving import PREDICTION_SCHEMA
from alevor_assets.lib.alerts import ALERT_SCHEMA
from tests.conftest import START, small_settings
from tests.helpers import PUMP_SPEC
from tests.live.conftest import D3, commit_trades, insert_tokens, with_row_ids

LATE = timedelta(seconds=5)


def live_engine(storage: AlevorStorage, url: str):
    settings = small_settings()
    config = settings.feature_config()
    market = LiveMarket(storage.warehouse, settings.warmup_needs(START), config, [PUMP_SPEC.interval], D3)
    reader = WindowReader(url)
    engine = LiveEngine(market, [PUMP_SPEC], storage.registry, LiveStore(storage.root), LATE,
                        tokens_of=lambda: reader.tokens(D3), wh=storage.warehouse)
    return engine, TradeStream(reader, day_start_us(D3), engine.late_us)


def test_live_scores_and_alerts_equal_the_days_batch_partitions(home, live_db):
    built = AlevorStorage(home=str(home))
    wh = built.warehouse
    trades = with_row_ids(wh.read_partition("raw_trades", D3))
    insert_tokens(live_db, wh.read_partition("tokens", D3))
    engine, stream = live_engine(built, live_db)
    scored, alerts, ticks = [], [], 0
    # Seven commits, cut anywhere (mid-bar, mid-minute), each followed by a tick.
    n = trades.height
    cuts = [0, n // 5, n // 5 + 1, n // 2, 2 * n // 3 + 7, 5 * n // 6, n - 5, n]
    for lo, hi in zip(cuts, cuts[1:]):
        commit_trades(live_db, trades.slice(lo, hi - lo))
        result = engine.tick(stream.poll())
        ticks += bool(result.scored)
        scored.append(result.predictions)
        alerts.append(result.alerts)
    # A trade of the next day moves the clock past the day's last bar.
    last = trades.tail(1).with_columns(pl.col("ts") + timedelta(days=1), pl.col("trade_id") + 10**12)
    commit_trades(live_db, last)
    result = engine.tick(stream.poll())
    scored.append(result.predictions)
    alerts.append(result.alerts)
    assert ticks >= 6 and engine.market.too_late == 0

    live = pl.concat(scored).filter(pl.col("ts").dt.date() == D3).sort("token", "ts")
    batch = wh.read_partition(PUMP_SPEC.predictions_asset, D3).select(list(PREDICTION_SCHEMA)).sort("token", "ts")
    assert batch.height > 5_000 and batch["source"].unique().to_list() == ["model"]
    assert live.height == batch.height
    assert live.equals(batch)

    live_alerts = pl.concat(alerts).filter(pl.col("ts").dt.date() == D3)
    batch_alerts = wh.read_partition("alerts", D3).filter(pl.col("spec") == PUMP_SPEC.name).select(list(ALERT_SCHEMA))
    assert batch_alerts.height > 0
    assert live_alerts.select(list(ALERT_SCHEMA)).sort("ts", "token").equals(batch_alerts.sort("ts", "token"))
    assert set(live_alerts["mode"]) == {"live"}
    # What the store holds is what the ticks returned, once each.
    stored = LiveStore(built.root).alerts()
    assert stored.height == live_alerts.height == stored.unique(["spec", "token", "ts"]).height


def test_a_warm_up_day_never_built_is_said(home):
    import shutil

    storage = AlevorStorage(home=str(home))
    wh = storage.warehouse
    shutil.rmtree(wh.partition_path("bars", D3 - timedelta(days=1), {"interval": "2s"}).parent)
    engine, _ = live_engine(storage, "postgresql://unused")
    engine.market.add(wh.read_partition("raw_trades", D3).head(50))
    assert engine.market.warnings and "never materialized" in engine.market.warnings[0]
    assert "2024-01-02" in engine.market.warnings[0]
