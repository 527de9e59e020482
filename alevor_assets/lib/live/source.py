"""New trades from the source, by (timestamp, id), re-reading a trailing window.

A trade may commit after trades with later timestamps (a slow writer, a retried insert). Each
read asks for every trade with a timestamp at or after ``cursor - late_commit`` and drops the
(token, id) pairs it has already seen, so a trade that commits up to ``late_commit`` after its
timestamp is read once. From PostgreSQL that is one keyset scan of the ``(timestamp, id)`` index
(the source's own paging and conversion), so the work per read grows with the new trades and that
window, not with the day. From files (``FileWindowReader``) a read does nothing until a matching
file is added or changed; then the days the window covers are read again through the files
source (each file parsed once, kept while unchanged), because duplicates across files and the
derived ids of id-less rows are defined over a whole day's files.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Protocol

import polars as pl

from alevor_assets.lib.intervals import DAY_US, day_start_us
from alevor_assets.lib.sources import TRADE_SCHEMA
from alevor_assets.lib.sources.files import FileTradeReader
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


class FileWindowReader:
    """The files source over a time window (its formats, rejects, duplicates across files and
    derived ids unchanged): reads nothing while no matching file was added or changed."""

    def __init__(self, reader: FileTradeReader):
        self.reader = reader
        self.where = reader.pattern
        self._fingerprint: dict[str, tuple[int, int]] | None = None

    def read_window(self, lo_us: int, hi_us: int) -> pl.DataFrame:
        """Valid trades with ``lo_us <= ts < hi_us``, when the files changed since the last read
        (none otherwise: nothing new can be there)."""
        now = self.reader.fingerprint()
        if now == self._fingerprint or not now:
            return pl.DataFrame(schema=TRADE_SCHEMA)
        days = sorted({d for path in now for d in self.reader.file_days(path)
                       if day_start_us(d) + DAY_US > lo_us and day_start_us(d) < hi_us})
        frames = [self.reader.read_day(d).trades for d in days]
        self._fingerprint = now
        ts = pl.col("ts").dt.epoch("us")
        return pl.concat([pl.DataFrame(schema=TRADE_SCHEMA), *[f.select(list(TRADE_SCHEMA)) for f in frames]]).filter(
            (ts >= lo_us) & (ts < hi_us))

    def tokens(self, day: date) -> pl.DataFrame | None:
        return self.reader.tokens(day) if self.reader.files() else None


class WindowSource(Protocol):
    def read_window(self, lo_us: int, hi_us: int) -> pl.DataFrame: ...


class TradeStream:
    """Trades not seen yet, from ``since_us`` on; ``late_commit_us`` is how late a commit may be."""

    FAR_FUTURE_US = int((datetime(9000, 1, 1, tzinfo=timezone.utc) - EPOCH).total_seconds()) * 1_000_000

    def __init__(self, reader: WindowSource, since_us: int, late_commit_us: int):
        self.reader, self.late_commit_us = reader, late_commit_us
        self.since_us = since_us
        self.cursor_us: int | None = None  # newest trade timestamp read
        # (token, id) pairs inside the window: ids are unique per token (exchange files) or overall
        self._recent = pl.DataFrame(schema={"token": pl.String, "trade_id": pl.Int64, "ts_us": pl.Int64})

    def poll(self) -> pl.DataFrame:
        """The trades committed since the last poll (all from ``since_us`` on the first)."""
        lo = self.since_us if self.cursor_us is None else max(self.since_us, self.cursor_us - self.late_commit_us)
        rows = self.reader.read_window(lo, self.FAR_FUTURE_US)
        fresh = rows.join(self._recent.select("token", "trade_id"), on=["token", "trade_id"], how="anti")
        if rows.height:
            self.cursor_us = max(self.cursor_us or 0, int(rows["ts"].dt.epoch("us").max()))
            keep_from = self.cursor_us - self.late_commit_us
            seen = pl.concat([self._recent, rows.select("token", "trade_id", pl.col("ts").dt.epoch("us").alias("ts_us"))])
            self._recent = seen.filter(pl.col("ts_us") >= keep_from).unique(["token", "trade_id"])
        return fresh
