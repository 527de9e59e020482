"""One bars measurement: ``python -m bench._bars_worker ENGINE SIZE ORDER INTERVALS``.

ENGINE: asset (the real `bars` asset, Parquet in to Parquet out), api (alevor_assets.
resample_trades on in-memory trades), duckdb (a hand-written GROUP BY on the same in-memory
trades), pandas (groupby(token).resample, the code users write today). ORDER: token (as stored)
or time (as exchange exports arrive). In-memory engines run twice; both timings are reported.
"""

from __future__ import annotations

import sys
import time

import polars as pl

from bench._data import DAY, home, trades_path
from bench._measure import report

DUCKDB_QUERY = """
SELECT token, time_bucket(INTERVAL '{seconds} seconds', ts) AS ts,
       arg_min(price, ts) AS open, max(price) AS high, min(price) AS low, arg_max(price, ts) AS close,
       sum(amount) AS volume, sum(price * amount) AS quote_volume,
       sum(amount) FILTER (side = 'buy') AS buy_volume, sum(amount) FILTER (side = 'sell') AS sell_volume,
       count(*) AS trade_count
FROM trades GROUP BY ALL
"""


def _asset(size: str, intervals: list[str]) -> dict:
    import dagster as dg

    from alevor_assets.defs.market_data.assets import bars
    from alevor_assets.defs.resources import AlevorStorage, PipelineSettings

    storage = AlevorStorage(home=str(home(size)))
    # Time intervals, and dollar_<T> / volume_<T> threshold bars as the pipeline settings name them.
    thresholds = {kind: [float(i.split("_", 1)[1]) for i in intervals if i.startswith(f"{kind}_")] for kind in ("dollar", "volume")}
    settings = PipelineSettings(
        bar_intervals=[i for i in intervals if "_" not in i], dollar_thresholds=thresholds["dollar"],
        volume_thresholds=thresholds["volume"], feature_intervals=[], warmup_bars=1000, max_warmup_days=400, multi_timeframe=[],
    )
    started = time.monotonic()
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([bars], instance=instance, resources={"storage": storage, "settings": settings}, partition_key=DAY.isoformat())
    seconds = time.monotonic() - started
    assert result.success
    rows = sum(pl.scan_parquet(storage.warehouse.partition_path("bars", DAY, {"interval": i})).select(pl.len()).collect().item() for i in intervals)
    return {"seconds": seconds, "bars": rows}


def _in_memory(engine: str, size: str, order: str, interval: str) -> dict:
    trades = pl.read_parquet(trades_path(size))
    if order == "time":
        trades = trades.sort("ts", "trade_id")
    if engine == "api":
        from alevor_assets import resample_trades

        run = lambda: resample_trades(trades, interval).height  # noqa: E731
    elif engine == "duckdb":
        import duckdb

        from alevor_assets.lib.intervals import interval_seconds

        con = duckdb.connect()
        con.register("trades", trades)
        query = DUCKDB_QUERY.format(seconds=int(interval_seconds(interval)))
        run = lambda: con.sql(query).pl().height  # noqa: E731
    elif engine == "pandas":
        import pandas as pd

        frame = trades.to_pandas()
        del trades

        def run() -> int:
            f = frame.set_index("ts")
            f["quote"] = f["price"] * f["amount"]
            f["buy"] = f["amount"].where(f["side"] == "buy", 0.0)
            f["sell"] = f["amount"].where(f["side"] == "sell", 0.0)
            out = f.groupby("token").resample(pd.Timedelta(interval)).agg(
                open=("price", "first"), high=("price", "max"), low=("price", "min"), close=("price", "last"),
                volume=("amount", "sum"), quote_volume=("quote", "sum"), buy_volume=("buy", "sum"),
                sell_volume=("sell", "sum"), trade_count=("price", "count"),
            )
            return int((out["trade_count"] > 0).sum())
    else:
        raise SystemExit(f"unknown engine {engine}")
    timings, rows = [], 0
    for _ in range(2):
        started = time.monotonic()
        rows = run()
        timings.append(time.monotonic() - started)
    return {"first_s": timings[0], "seconds": timings[1], "bars": rows}


if __name__ == "__main__":
    engine, size, order, intervals = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
    trades_path(size)
    result = _asset(size, intervals) if engine == "asset" else _in_memory(engine, size, order, intervals[0])
    report({"engine": engine, "size": size, "order": order, "intervals": ",".join(intervals), **result})
