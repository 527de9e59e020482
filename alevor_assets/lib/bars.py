"""Time bars from trades.

Trades are put in (token, ts, trade_id) order once; every bucket of every interval is then a
contiguous run of rows, so each aggregate is a single sequential pass over a slice
(``numpy.ufunc.reduceat``). That is as fast as a hash GROUP BY here and, unlike one, exactly
reproducible: parallel hash aggregation adds floats in whatever order threads finish, so DuckDB's
``sum`` gave different last bits on re-runs of the same data (measured; see README), which would
break byte-identical partition re-runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from alevor_assets.lib.intervals import interval_us, sort_intervals
from alevor_assets.lib.schemas import BAR_COLUMNS, RAW_TRADES_COLUMNS, UTC_US

BAR_SCHEMA: dict[str, pl.DataType] = {
    "token": pl.Utf8,
    "interval": pl.Utf8,
    "ts": UTC_US,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
    "quote_volume": pl.Float64,
    "buy_volume": pl.Float64,
    "sell_volume": pl.Float64,
    "trade_count": pl.Int64,
    "vwap": pl.Float64,
}


def resample_trades(trades: pl.DataFrame | pl.LazyFrame, interval: str) -> pl.DataFrame:
    """OHLCV time bars of ``interval`` (``"2s"``, ``"1m"``, ...) from trades.

    ``trades`` has the ``raw_trades`` columns (token, trade_id, ts as a UTC datetime, price,
    amount, side) in any row order. Each bar covers ``[ts, ts + interval)`` with ``ts`` aligned to
    epoch multiples of the interval; only buckets with at least one trade appear. Open and close
    are the first and last trade by (ts, trade_id). Rows come out sorted by token, then ts.
    """
    return time_bars(trades, [interval])


def time_bars(trades: pl.DataFrame | pl.LazyFrame, intervals: Sequence[str]) -> pl.DataFrame:
    """Bars for several intervals at once (one ordering pass), stacked, finest interval first."""
    steps = {i: interval_us(i) for i in sort_intervals(list(intervals))}
    df = _prepare(trades)
    if df.height == 0:
        return pl.DataFrame(schema=BAR_SCHEMA)
    df = _in_key_order(df)
    token = df["token"]
    ts = df["ts"].dt.epoch("us").to_numpy()
    price = df["price"].to_numpy()
    amount = df["amount"].to_numpy()
    is_buy = (df["side"] == "buy").to_numpy()
    quote = price * amount
    buy_amount = np.where(is_buy, amount, 0.0)
    sell_amount = np.where(is_buy, 0.0, amount)
    token_change = np.empty(len(ts), dtype=bool)
    token_change[0] = True
    token_change[1:] = (token.slice(1) != token.slice(0, len(ts) - 1)).to_numpy()
    frames = []
    for name, step in steps.items():
        bucket = ts // step
        new = token_change.copy()
        new[1:] |= bucket[1:] != bucket[:-1]
        starts = np.flatnonzero(new)
        ends = np.append(starts[1:], len(ts)) - 1
        volume = np.add.reduceat(amount, starts)
        quote_volume = np.add.reduceat(quote, starts)
        frames.append(
            pl.DataFrame(
                {
                    "token": token.gather(starts),
                    "interval": pl.repeat(name, len(starts), eager=True, dtype=pl.Utf8),
                    "ts": pl.Series(bucket[starts] * step, dtype=pl.Int64).cast(UTC_US),
                    "open": price[starts],
                    "high": np.maximum.reduceat(price, starts),
                    "low": np.minimum.reduceat(price, starts),
                    "close": price[ends],
                    "volume": volume,
                    "quote_volume": quote_volume,
                    "buy_volume": np.add.reduceat(buy_amount, starts),
                    "sell_volume": np.add.reduceat(sell_amount, starts),
                    "trade_count": (ends - starts + 1).astype(np.int64),
                    "vwap": quote_volume / volume,
                },
                schema=BAR_SCHEMA,
            )
        )
    return pl.concat(frames, how="vertical")


def _prepare(trades: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    df = trades.collect() if isinstance(trades, pl.LazyFrame) else trades
    missing = [c for c in RAW_TRADES_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"trades are missing columns {missing}; expected {RAW_TRADES_COLUMNS}")
    ts_type = df.schema["ts"]
    if not isinstance(ts_type, pl.Datetime) or ts_type.time_zone is None:
        raise ValueError(
            f"trades.ts must be a timezone-aware datetime (UTC), got {ts_type}; "
            "attach the zone explicitly, e.g. pl.col('ts').dt.replace_time_zone('UTC')"
        )
    return df.select(
        pl.col("token").cast(pl.Utf8),
        pl.col("trade_id").cast(pl.Int64),
        pl.col("ts").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
        pl.col("price").cast(pl.Float64),
        pl.col("amount").cast(pl.Float64),
        pl.col("side").cast(pl.Utf8),
    )


def is_key_ordered(df: pl.DataFrame) -> bool:
    """True if rows are in (token, ts, trade_id) order."""
    if df.height < 2:
        return True
    tok, ts, tid = pl.col("token"), pl.col("ts"), pl.col("trade_id")
    prev = lambda c: c.shift(1)  # noqa: E731
    ordered = (tok > prev(tok)) | (
        (tok == prev(tok)) & ((ts > prev(ts)) | ((ts == prev(ts)) & (tid >= prev(tid))))
    )
    return bool(df.select(ordered.slice(1).all()).item())


def _in_key_order(df: pl.DataFrame) -> pl.DataFrame:
    """Rows in (token, ts, trade_id) order, tokens in lexical order; cheap when already there."""
    if is_key_ordered(df):
        return df
    # Token codes in lexical order make the token part of the sort an integer sort.
    categories = df["token"].unique().sort()
    codes = df["token"].cast(pl.Enum(categories)).to_physical().to_numpy()
    ts, tid = pl.col("ts"), pl.col("trade_id")
    time_ordered = df.select(
        ((ts > ts.shift(1)) | ((ts == ts.shift(1)) & (tid >= tid.shift(1)))).slice(1).all()
    ).item()
    if time_ordered:
        # Exchange exports arrive in time order: a stable integer sort on the token code keeps
        # (ts, trade_id) order inside each token, and a 16-bit key sorts in linear time.
        key = codes.astype(np.uint16) if len(categories) <= np.iinfo(np.uint16).max else codes
        order = np.argsort(key, kind="stable")
    else:
        order = (
            pl.DataFrame({"c": codes, "t": df["ts"], "i": df["trade_id"]})
            .select(pl.arg_sort_by("c", "t", "i", maintain_order=True))
            .to_series()
            .to_numpy()
        )
    return df[order]


def bars_columns() -> list[str]:
    return list(BAR_COLUMNS)
