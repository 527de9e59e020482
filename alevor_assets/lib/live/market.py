"""The live market: each token's warm-up history from the warehouse, the trades read since the
live day began, and the bars closed so far, kept in memory and grown by each poll.

Bars are built by the bar kernel from the trades of the buckets that closed since the last tick
(a bar depends on its own trades only), so barring grows with the new trades. A bar is closed once
the clock (the newest trade's timestamp, or the wall clock) has passed its end by the late-commit
allowance: after that a trade committed for it is counted as too late (the daily partitions, the
system of record, still get it).

Exactness with the daily assets: the in-memory day starts at a UTC midnight, and each token's
earlier days come from the warehouse exactly as the day's ``features`` partition plans them
(``lib/warmup.py``), so a live feature row is computed from the rows the batch row is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl

from alevor_assets.lib.bars import BAR_SCHEMA, bars_columns, make_bars
from alevor_assets.lib.features import FeatureConfig, compute_features
from alevor_assets.lib.intervals import day_start_us, interval_us
from alevor_assets.lib.schemas import RAW_TRADES_COLUMNS
from alevor_assets.lib.sources import TRADE_SCHEMA
from alevor_assets.lib.warehouse import Warehouse, days_between
from alevor_assets.lib.warmup import History, WarmupNeeds

TRADE_COLUMNS = RAW_TRADES_COLUMNS


class LiveMarket:
    """Trades from ``day`` (a UTC midnight) on, with bars of ``intervals`` closed incrementally."""

    def __init__(self, wh: Warehouse, needs: WarmupNeeds, config: FeatureConfig, intervals: Sequence[str], day: date):
        self.wh, self.config, self.day = wh, config, day
        self.intervals = list(dict.fromkeys(intervals))
        self.history = History(wh, needs)
        start = day_start_us(day)
        self.closed_until = {j: start for j in self.intervals}  # end of the last closed bar
        self.trades = pl.DataFrame(schema=TRADE_SCHEMA).select(TRADE_COLUMNS)
        self.bars = pl.DataFrame(schema=_bar_schema())
        self.past_bars = pl.DataFrame(schema=_bar_schema())
        self.past_trades = pl.DataFrame(schema=TRADE_SCHEMA).select(TRADE_COLUMNS)
        self._pending = self.trades  # trades of bars some interval has not closed yet
        self.known: set[str] = set()
        self.too_late = 0  # trades read after their bar had closed
        self.warnings: list[str] = []  # for the service's log

    def add(self, trades: pl.DataFrame) -> None:
        """Take newly read trades (``raw_trades`` columns); load the history of new tokens."""
        if trades.height == 0:
            return
        trades = trades.select(TRADE_COLUMNS).filter(pl.col("ts").dt.epoch("us") >= day_start_us(self.day))
        finest = max(self.closed_until.values())  # the finest interval's bars close first
        self.too_late += int((trades["ts"].dt.epoch("us") < finest).sum())
        self.trades = pl.concat([self.trades, trades])
        self._pending = pl.concat([self._pending, trades])
        new = sorted(set(trades["token"].unique().to_list()) - self.known)
        if new:
            self._load_history(new)
            self.known.update(new)

    def _load_history(self, tokens: list[str]) -> None:
        """The earlier days each new token's features read, as the day's partition plans them."""
        plan = self.history.plan_for(self.day, self.intervals, pl.DataFrame({"token": tokens}))
        if plan.missing:  # the daily partition of this day could not be built either
            self.warnings.append(f"live features of {len(tokens)} token(s) differ from the daily ones: {plan.reason()}")
        frames = [self.past_bars]
        for j in self.intervals:
            read = _read_before(self.wh, "bars", {"interval": j}, self.day, plan.bars_from.get(j, {}), tokens)
            if read is not None:
                frames.append(read.select(bars_columns()))
        self.past_bars = pl.concat(frames)
        trades = _read_before(self.wh, "raw_trades", None, self.day, plan.trades_from, tokens)
        if trades is not None:
            self.past_trades = pl.concat([self.past_trades, trades.select(TRADE_COLUMNS)])

    def close(self, clock_us: int) -> dict[str, tuple[int, int]]:
        """Close every bar that ended at or before ``clock_us``; per interval, the ``(from, to)``
        span of bar ends closed now (empty when none)."""
        closed: dict[str, tuple[int, int]] = {}
        frames = [self.bars]
        ts_us = self._pending["ts"].dt.epoch("us")
        for j in self.intervals:
            step = interval_us(j)
            until = clock_us // step * step
            if until <= self.closed_until[j]:
                continue
            lo = self.closed_until[j]
            rows = self._pending.filter((ts_us >= lo) & (ts_us < until))
            if rows.height:
                frames.append(make_bars(rows, [j]).select(bars_columns()))
            closed[j] = (lo, until)
            self.closed_until[j] = until
        if len(frames) > 1:
            self.bars = pl.concat(frames)
        # Only trades of bars still open are barred again: at most one bar of the coarsest interval.
        self._pending = self._pending.filter(ts_us >= min(self.closed_until.values()))
        return closed

    def features(self, interval: str, tokens: Sequence[str], first_ts_us: int, end_us: int, tokens_meta: pl.DataFrame | None) -> pl.DataFrame:
        """Features of ``interval`` for the closed bars of ``tokens`` with ``first_ts_us <= ts``
        and end ``<= end_us``: the feature code over each token's history and live rows. Sell
        trades before ``first_ts_us`` are left out (only buy trades feed the long La Morgia
        windows; the rush features of a bar read its own trades)."""
        who = pl.col("token").is_in(list(tokens))
        names = [interval, *self.config.coarser(interval)]
        bars = pl.concat([self.past_bars.filter(who), self.bars.filter(who)]).filter(pl.col("interval").is_in(names))
        keep = (pl.col("side") == "buy") | (pl.col("ts").dt.epoch("us") >= first_ts_us)
        trades = pl.concat([self.past_trades.filter(who), self.trades.filter(who)]).filter(keep)
        frame = compute_features(bars, interval, tokens=tokens_meta, trades=trades, config=self.config)
        ts = pl.col("ts").dt.epoch("us")
        return frame.filter((ts >= first_ts_us) & (ts + interval_us(interval) <= end_us))


def _bar_schema() -> dict[str, pl.DataType]:
    return {c: BAR_SCHEMA[c] for c in bars_columns()}


def _read_before(wh: Warehouse, asset: str, keys: dict[str, str] | None, day: date, starts: dict[str, date],
                 tokens: list[str]) -> pl.DataFrame | None:
    """Rows of each token from its first day in ``starts`` up to the day before ``day``."""
    first = min((starts.get(t, day) for t in tokens), default=day)
    scans = []
    for d in days_between(first, day - timedelta(days=1)) if first < day else []:
        who = [t for t in tokens if starts.get(t, day) <= d]
        path = wh.partition_path(asset, d, keys)
        if who and path.exists():
            scans.append(pl.scan_parquet(path).filter(pl.col("token").is_in(who)))
    return pl.concat(scans).collect() if scans else None
