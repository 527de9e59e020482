"""Deterministic benchmark data, generated once and cached under bench/.data (not committed)."""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path

import polars as pl

from alevor_assets.lib.synthetic import SyntheticConfig, trades_for_day
from alevor_assets.lib.warehouse import Warehouse

DATA = Path(__file__).resolve().parent / ".data"
DAY = date(2024, 1, 2)
SIZES = {"10m": (500, 10_000_000), "50m": (2000, 50_000_000)}


def home(size: str) -> Path:
    return DATA / f"home-{size}"


def trades_path(size: str) -> Path:
    """A raw_trades partition of ``size`` trades in a warehouse of its own (made if missing)."""
    tokens, rows = SIZES[size]
    wh = Warehouse(home(size) / "warehouse")
    path = wh.partition_path("raw_trades", DAY)
    if not path.exists():
        started = time.monotonic()
        # Mean activity is calibrated so the day holds about `rows` trades.
        cfg = SyntheticConfig(seed=20240102, tokens=tokens, trades_per_token_day=rows / tokens / 1.17,
                              new_token_fraction=0.0, launch_start=date(2024, 1, 1))
        frame = trades_for_day(cfg, DAY).with_columns(pl.lit(DAY).alias("date"))
        wh.write_partition("raw_trades", DAY, frame, sort_by=["token", "ts", "trade_id"])
        print(f"generated {frame.height:,} trades of {tokens} tokens in {time.monotonic() - started:.0f}s -> {path}", flush=True)
    return path


if __name__ == "__main__":
    # Generating a day costs far more memory than reducing it: bench.bars runs this first, in its
    # own process, so no measurement's peak memory includes the generator's.
    print(json.dumps({size: str(trades_path(size)) for size in sys.argv[1:]}))
