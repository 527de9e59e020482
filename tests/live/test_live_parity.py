"""Acceptance 1 of the live path: for the trades of a day committed in pieces, the live scores and
alerts equal the day's ``predictions_<spec>`` and ``alerts`` partitions, exactly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import polars as pl

from alevor_assets.defs.resources import AlevorStorage

from alevor_assets.lib.live.engine import LiveEngine
from alevor_assets.lib.live.market import LiveMarket
from alevor_assets.lib.live.source import FileWindowReader, TradeStream, WindowReader, WindowSource
from alevor_assets.lib.sources.files import FileTradeReader
from alevor_assets.lib.live.store import LiveStore
from alevor_assets.lib.intervals import day_start_us
from alevor_assets.lib.serving import PREDICTION_SCHEMA
from alevor_assets.lib.alerts import ALERT_SCHEMA
from tests.conftest import START, small_settings
from tests.helpers import PUMP_SPEC
from tests.live.conftest import D3, commit_trades, insert_tokens, with_row_ids

LATE = timedelta(seconds=5)


def live_engine(storage: AlevorStorage, reader: WindowSource, tokens_of: Callable[[], pl.DataFrame] | None = None):
    settings = small_settings()
    config = settings.feature_config()
    market = LiveMarket(storage.warehouse, settings.warmup_needs(START), config, [PUMP_SPEC.interval], D3)
    engine = LiveEngine(market, [PUMP_SPEC], storage.registry, LiveStore(storage.root), LATE,
                        tokens_of=tokens_of or (lambda: reader.tokens(D3)), wh=storage.warehouse)
    return engine, TradeStream(reader, day_start_us(D3), engine.late_us)


def replay_day_and_compare(built: AlevorStorage, trades: pl.DataFrame, engine: LiveEngine, stream: TradeStream,
                           land: Callable[[pl.DataFrame], None]) -> None:
    """Land the day's trades in seven pieces, cut anywhere (mid-bar, mid-minute), each followed by
    a tick, then one trade of the next day (it moves the clock past the day's last bar); the live
    scores and alerts must equal the day's batch partitions."""
    wh = built.warehouse
    scored, alerts, ticks = [], [], 0
    n = trades.height
    cuts = [0, n // 5, n // 5 + 1, n // 2, 2 * n // 3 + 7, 5 * n // 6, n - 5, n]
    last = trades.tail(1).with_columns(pl.col("ts") + timedelta(days=1), pl.col("trade_id") + 10**12)
    for piece in [trades.slice(lo, hi - lo) for lo, hi in zip(cuts, cuts[1:])] + [last]:
        land(piece)
        result = engine.tick(stream.poll())
        ticks += bool(result.scored)
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


def test_live_scores_and_alerts_equal_the_days_batch_partitions(home, live_db):
    built = AlevorStorage(home=str(home))
    trades = with_row_ids(built.warehouse.read_partition("raw_trades", D3))
    insert_tokens(live_db, built.warehouse.read_partition("tokens", D3))
    engine, stream = live_engine(built, WindowReader(live_db))
    replay_day_and_compare(built, trades, engine, stream, lambda piece: commit_trades(live_db, piece))


def test_files_landing_one_after_another_give_the_batch_partitions_too(home, tmp_path):
    """The files source served live: each piece of the day lands as a new Parquet file (as an
    exporter rotating its files would write them), read once it is there."""
    built = AlevorStorage(home=str(home))
    trades = built.warehouse.read_partition("raw_trades", D3).select("token", "trade_id", "ts", "price", "amount", "side")
    folder = tmp_path / "incoming"
    folder.mkdir()
    # Token metadata as the batch build had it (this warehouse was built from the synthetic source).
    engine, stream = live_engine(built, FileWindowReader(FileTradeReader(str(folder / "*.parquet"))),
                                 tokens_of=lambda: built.warehouse.read_partition("tokens", D3))
    landed: list[int] = []

    def land(piece: pl.DataFrame) -> None:
        # Written under another name, then renamed: a reader never sees half a file.
        name = folder / f"trades-{len(landed):03d}.parquet"
        piece.write_parquet(folder / ".partial")
        (folder / ".partial").rename(name)
        landed.append(piece.height)

    # The files' trades in time order (an exporter writes what happened since its last file).
    replay_day_and_compare(built, trades.sort("ts", "token", "trade_id"), engine, stream, land)
    assert stream.reader.read_window(0, stream.FAR_FUTURE_US).height == 0  # nothing landed: nothing read


def test_a_warm_up_day_never_built_is_said(home):
    import shutil

    storage = AlevorStorage(home=str(home))
    wh = storage.warehouse
    shutil.rmtree(wh.partition_path("bars", D3 - timedelta(days=1), {"interval": "2s"}).parent)
    engine, _ = live_engine(storage, WindowReader("postgresql://unused"))
    engine.market.add(wh.read_partition("raw_trades", D3).head(50))
    assert engine.market.warnings and "never materialized" in engine.market.warnings[0]
    assert "2024-01-02" in engine.market.warnings[0]
