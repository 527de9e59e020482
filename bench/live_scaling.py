"""How one live tick's feature step grows with the day: ``python -m bench.live_scaling``.

The live path recomputes the features of newly closed bars over each active token's day so far
(La Morgia windows sum per UTC day; see README "Live alerts"), so its cost per tick grows with the
time since midnight. This measures ``LiveMarket.features`` for every token (the bench's 1,000
trades per second across 200 tokens, random walks, in memory, no database) at several points of
the day: the seconds one tick spends there, best of two.
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path
import tempfile

import numpy as np
import polars as pl

from alevor_assets.lib.config import pipeline_settings
from alevor_assets.lib.features import FeatureConfig
from alevor_assets.lib.intervals import day_start_us
from alevor_assets.lib.live.market import LiveMarket
from alevor_assets.lib.warehouse import Warehouse
from alevor_assets.lib.warmup import WarmupNeeds

DAY = date(2026, 1, 5)


def _trades(minutes: float, rate: float, tokens: int, rng) -> pl.DataFrame:
    n = int(minutes * 60 * rate)
    start = day_start_us(DAY)
    who = rng.integers(0, tokens, n)
    ts = np.sort(rng.integers(start, start + int(minutes * 60e6), n))
    steps = rng.normal(0, 0.0002, n)
    frame = pl.DataFrame({"k": who, "ts": ts, "r": steps}).with_columns(
        pl.col("r").cum_sum().over("k").exp().alias("price"))
    return frame.select(
        pl.format("TK{}", pl.col("k")).alias("token"), pl.int_range(1, n + 1, dtype=pl.Int64).alias("trade_id"),
        pl.col("ts").cast(pl.Datetime("us", "UTC")), "price",
        pl.Series(rng.lognormal(0, 0.6, n)).alias("amount"),
        pl.Series(np.where(rng.random(n) < 0.5, "buy", "sell")).alias("side"),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", default="15,60,180", help="points of the day (minutes after midnight)")
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--tokens", type=int, default=200)
    args = ap.parse_args()
    raw = pipeline_settings()["features"]
    config = FeatureConfig(spans=tuple(raw["spans"]), multi_timeframe=tuple(raw["multi_timeframe"]),
                           rush_chunks=dict(raw["rush_chunks"]), max_gap=raw["max_gap"])
    needs = WarmupNeeds.of(config, int(raw["warmup_bars"]), int(raw["max_warmup_days"]), DAY)
    rng = np.random.default_rng(3)
    print("| minutes after midnight | trades in memory | 2s bars | features seconds per tick |\n|---|---|---|---|")
    for minutes in (float(m) for m in args.minutes.split(",")):
        trades = _trades(minutes, args.rate, args.tokens, rng)
        wh = Warehouse(Path(tempfile.mkdtemp()) / "warehouse")
        market = LiveMarket(wh, needs, config, ["2s", *config.coarser("2s")], DAY)
        market.add(trades)
        end = day_start_us(DAY) + int(minutes * 60e6)
        market.close(end)
        tokens = sorted(market.known)
        best = float("inf")
        for _ in range(2):
            began = time.perf_counter()
            market.features("2s", tokens, end - 2_000_000, end, None)
            best = min(best, time.perf_counter() - began)
        bars = market.bars.filter(pl.col("interval") == "2s").height
        print(f"| {minutes:g} | {trades.height:,} | {bars:,} | {best:.2f} |", flush=True)
        del trades, market


if __name__ == "__main__":
    main()
