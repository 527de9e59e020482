"""How one live tick's cost follows the day: ``python -m bench.live_scaling``.

At several points of a day (the bench's 1,000 trades per second across 200 tokens, random walks,
in memory, no database), a ``LiveMarket`` takes the day so far and computes the features of every
token once (the cold start a restarted service pays: each token's whole series), then runs ten
2-second ticks as the service does: add the trades of the last two seconds, close the bars,
compute the features of the new bars from each token's resume row. Prints the cold step and the
median and worst tick (close and features), in seconds, the 2-second rows a tick computes, and
what the market holds in memory afterwards.
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
    print("| minutes after midnight | trades so far | cold features (s) | tick median (s) | tick worst (s) | 2s rows per tick "
          "| bar rows held | trades held |\n|---|---|---|---|---|---|---|---|")
    for minutes in (float(m) for m in args.minutes.split(",")):
        ticks = 10
        trades = _trades(minutes + ticks * 2 / 60, args.rate, args.tokens, rng)
        ts = trades["ts"].dt.epoch("us").to_numpy()
        end = day_start_us(DAY) + int(minutes * 60e6)
        wh = Warehouse(Path(tempfile.mkdtemp()) / "warehouse")
        market = LiveMarket(wh, needs, config, ["2s"], DAY)
        cut = int(np.searchsorted(ts, end))
        market.add(trades.slice(0, cut))
        market.close(end)
        began = time.perf_counter()
        market.features("2s", sorted(market.known), day_start_us(DAY), end, None)
        cold = time.perf_counter() - began
        seconds, rows = [], []
        for k in range(1, ticks + 1):
            clock = end + k * 2_000_000
            nxt = int(np.searchsorted(ts, clock))
            began = time.perf_counter()
            market.add(trades.slice(cut, nxt - cut))
            market.close(clock)
            new = market.closed_bars("2s", clock - 2_000_000, clock)
            market.features("2s", new["token"].unique().sort().to_list(), clock - 2_000_000, clock, None)
            seconds.append(time.perf_counter() - began)
            rows.append(market.rows_computed.get("2s", 0))
            cut = nxt
        print(f"| {minutes:g} | {cut:,} | {cold:.2f} | {float(np.median(seconds)):.2f} | {max(seconds):.2f} | "
              f"{int(np.median(rows)):,} | {market.bars_held:,} | {market.pending_trades:,} |", flush=True)
        del trades, market

if __name__ == "__main__":
    main()
