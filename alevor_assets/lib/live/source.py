"""New trades from the PostgreSQL source, by (timestamp, id), re-reading a trailing window.

A trade may commit after trades with later timestamps (a slow writer, a retried insert). Each
read asks for every trade with a timestamp at or after ``cursor - late_commit`` (one keyset scan
of the ``(timestamp, id)`` index, the source's own paging and conversion) and drops the ids it has
already seen, so a trade that commits up to ``late_commit`` after its timestamp is read once, and
the work per read grows with the new trades and that window, not with the day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl

from alevor_assets.lib.sources.postgres import PostgresTradeReader

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class WindowReader(PostgresTradeReader):
    """The source's reader over any time window instead of a UTC day (its keyset pages, type
    checks, naive-timestamp rule, retries and password masking unchanged)."""

    _window: tuple[int, int] = (0, 0)

    def _bounds(self, conn, day: date) -> tuple[datetime, datetime]:
        lo, hi = (EPOCH + timedelta(microseconds=us) for us in self._window)
        if self._timestamps_are_naive(conn):
            return lo.replace(tzinfo=None), hi.replace(tzinfo=None)
        return lo, hi

    def read_window(self, lo_us: int, hi_us: int) -> pl.DataFrame:
        """Valid trades with ``lo_us <= ts < hi_us`` (``raw_trades`` columns); rows the source
        would reject (unknown token, bad price, ...) are left out, as raw_trades would fail on them."""
        self._window = (lo_us, hi_us)
        return self.read_day(date(1970, 1, 1)).trades


class TradeStream:
    """Trades not seen yet, from ``since_us`` on; ``late_commit_us`` is how late a commit may be."""

    FAR_FUTURE_US = int((datetime(9000, 1, 1, tzinfo=timezone.utc) - EPOCH).total_seconds()) * 1_000_000

    def __init__(self, reader: WindowReader, since_us: int, late_commit_us: int):
        self.reader, self.late_commit_us = reader, late_commit_us
        self.since_us = since_us
        self.cursor_us: int | None = None  # newest trade timestamp read
        self._recent = pl.DataFrame(schema={"trade_id": pl.Int64, "ts_us": pl.Int64})  # ids inside the window

    def poll(self) -> pl.DataFrame:
        """The trades committed since the last poll (all from ``since_us`` on the first)."""
        lo = self.since_us if self.cursor_us is None else max(self.since_us, self.cursor_us - self.late_commit_us)
        rows = self.reader.read_window(lo, self.FAR_FUTURE_US)
        fresh = rows.join(self._recent.select("trade_id"), on="trade_id", how="anti")
        if rows.height:
            self.cursor_us = max(self.cursor_us or 0, int(rows["ts"].dt.epoch("us").max()))
            keep_from = self.cursor_us - self.late_commit_us
            seen = pl.concat([self._recent, rows.select("trade_id", pl.col("ts").dt.epoch("us").alias("ts_us"))])
            self._recent = seen.filter(pl.col("ts_us") >= keep_from).unique("trade_id")
        return fresh
