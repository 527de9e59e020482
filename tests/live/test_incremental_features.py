"""The live market computes each tick's features from a tail of every series (resumed EMAs, the
trade tables grown bucket by bucket) and still gives the values of one computation over the whole
day, bit for bit; and the rows it computes per tick stop growing with the day."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from alevor_assets.lib.bars import make_bars
from alevor_assets.lib.features import RESUME_MARGIN_ROWS, FeatureConfig, compute_features
from alevor_assets.lib.intervals import day_start_us, interval_us
from alevor_assets.lib.live.market import LiveMarket
from alevor_assets.lib.warehouse import Warehouse
from alevor_assets.lib.warmup import WarmupNeeds

DAY = date(2025, 3, 4)
HOUR_US = 3_600_000_000


def _market_trades(hours: float, seed: int) -> pl.DataFrame:
    """Five tokens of different habits over the first ``hours`` of DAY: a liquid one, a bursty
    one (buys several to a millisecond: rush orders), an illiquid one, one silent for three hours
    in the middle, and one that starts trading late."""
    rng = np.random.default_rng(seed)
    start, span = day_start_us(DAY), int(hours * HOUR_US)
    frames = []

    def token(name: str, n: int, lo: int, hi: int, rush: float = 0.0) -> None:
        ts = np.sort(rng.integers(lo, hi, n))
        if rush:  # copy some trades onto the same millisecond (a rush order split in fills)
            dup = ts[rng.random(n) < rush]
            ts = np.sort(np.concatenate([ts, dup // 1000 * 1000 + rng.integers(0, 1000, len(dup))]))
        m = len(ts)
        price = np.exp(np.cumsum(rng.normal(0, 0.002, m))) * rng.uniform(0.5, 50)
        side = np.where(rng.random(m) < 0.55, "buy", "sell")
        frames.append(pl.DataFrame({"token": [name] * m, "ts": ts, "price": price,
                                    "amount": rng.lognormal(0, 0.7, m), "side": side}))

    token("LIQ", int(hours * 3600 * 1.5), start, start + span)
    token("BURST", int(hours * 3600 * 0.4), start, start + span, rush=0.3)
    token("THIN", int(hours * 12), start, start + span)
    quiet = start + span // 3
    token("GAP", int(hours * 3600 * 0.3), start, quiet)
    token("GAP", int(hours * 3600 * 0.1), quiet + 3 * HOUR_US, start + span)
    token("LATE", int(hours * 3600 * 0.5), start + span // 2, start + span)
    trades = pl.concat(frames).sort("ts", "token")
    return trades.with_columns(pl.int_range(1, trades.height + 1, dtype=pl.Int64).alias("trade_id"),
                               pl.col("ts").cast(pl.Datetime("us", "UTC"))).select(
        "token", "trade_id", "ts", "price", "amount", "side")


def test_tick_by_tick_features_equal_the_whole_days_and_stop_growing(tmp_path):
    hours = 7.0
    config = FeatureConfig()
    trades = _market_trades(hours, seed=11)
    intervals = ["2s", *config.coarser("2s")]
    market = LiveMarket(Warehouse(tmp_path / "warehouse"), WarmupNeeds.of(config, 300, 3, DAY), config, ["2s"], DAY)
    ts_us = trades["ts"].dt.epoch("us").to_numpy()
    # Ticks every 20-900 s of market time, cut anywhere (mid-bar, mid-millisecond group).
    rng = np.random.default_rng(5)
    edges = np.cumsum(rng.integers(20_000_000, 900_000_000, 200)) + day_start_us(DAY)
    edges = edges[edges < ts_us[-1]].tolist() + [int(ts_us[-1]) + 1]
    late = 3_000_000
    scored_until, pieces, computed = day_start_us(DAY), [], []
    lo = 0
    for edge in edges:
        hi = int(np.searchsorted(ts_us, edge))
        market.add(trades.slice(lo, hi - lo))
        lo = hi
        market.close(edge - late)
        until = market.closed_until["2s"]
        new = market.closed_bars("2s", scored_until, until)
        if new.height:
            tokens = new["token"].unique().sort().to_list()
            pieces.append(market.features("2s", tokens, scored_until, until, None))
            computed.append((until, market.rows_computed["2s"]))
        scored_until = until
    assert market.too_late == 0 and len(pieces) > 25

    live = pl.concat(pieces).sort("token", "ts")
    bars = make_bars(trades, intervals)
    whole = compute_features(bars, "2s", trades=trades, config=config)
    whole = whole.filter(pl.col("ts").dt.epoch("us") + interval_us("2s") <= scored_until)
    assert live.height == whole.height > 20_000
    assert live.equals(whole)
    # Every family has values in the compared rows (the comparison is not of nulls); hours of
    # 1 h bars are too few for their indicators.
    filled = live.select(pl.all().exclude("token", "interval", "ts", "token_age_hours", "^mtf_1h_.*$").null_count()) < live.height
    assert all(filled.row(0)), [c for c, ok in zip(filled.columns, filled.row(0)) if not ok]
    # Resumed series deep in (EMAs carried), and rows per tick bounded by the windows, not the day:
    # a tick reads each token's last two hours or so (the 1 h span's aligned blocks, from a resume
    # row of the tick before, at most 900 s earlier) or its last RESUME_MARGIN_ROWS rows.
    assert (market._resume[("2s", "2s")]["_pos"] >= RESUME_MARGIN_ROWS).sum() >= 3
    assert all(market._chunk_resume[c].height >= 2 for c in config.rush_chunks)  # La Morgia sums carried too
    fine = bars.filter(pl.col("interval") == "2s").with_columns(pl.col("ts").dt.epoch("us").alias("t"))
    day_start = day_start_us(DAY)
    late_ticks = [(until, rows) for until, rows in computed if until > day_start + int((hours - 1) * HOUR_US)]
    assert late_ticks
    for until, rows in late_ticks:
        recent = fine.filter(pl.col("t") >= until - 2 * HOUR_US - 900_000_000).height
        assert rows <= recent + 5 * (RESUME_MARGIN_ROWS + 2) < fine.filter(pl.col("t") < until).height
