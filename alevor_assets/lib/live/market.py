"""The live market: each token's warm-up history from the warehouse and what the live day has
closed so far (bars, and the trade tables the rush and La Morgia features read), kept in memory
and grown by each poll.

Work per tick follows the new trades, not the size of the day:

- Bars, rush counts per bar and La Morgia chunk sums are built by the bar kernel from the trades
  of the buckets that closed since the last tick (each depends on its own trades only). A bucket
  is closed once the clock (the newest trade's time, or the wall clock) has passed its end by the
  late-commit allowance; a trade read after that counts as too late (the daily partitions, the
  system of record, still get it). Trades are dropped once every bucket they fall in is closed.
- Features of newly closed bars are computed over a tail of each token's series: from a resume
  row (``lib/features.resume_points``) far enough back for every window of the new rows, with
  the recursive indicators (EMAs) carried from there. The first computation of a token reads its
  whole history; the next ones read the tail.

Exactness with the daily assets: the in-memory day starts at a UTC midnight, and each token's
earlier days come from the warehouse exactly as the day's ``features`` partition plans them
(``lib/warmup.py``), so a live feature row is computed from the rows the batch row is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone

import polars as pl

from alevor_assets.lib.bars import BAR_SCHEMA, bars_columns, make_bars
from alevor_assets.lib.features import FeatureConfig, SeriesState, features_from_tables, resume_points
from alevor_assets.lib.intervals import day_start_us, interval_us
from alevor_assets.lib.schemas import RAW_TRADES_COLUMNS
from alevor_assets.lib.sources import TRADE_SCHEMA
from alevor_assets.lib.trade_features import CHUNK_SCHEMA, RUSH_SCHEMA, TradeTables, chunk_resume_points
from alevor_assets.lib.warehouse import Warehouse, days_between
from alevor_assets.lib.warmup import History, WarmupNeeds

TRADE_COLUMNS = RAW_TRADES_COLUMNS
_MAX_CHUNKS = 64  # frames grown by appends are compacted past this many pieces


class LiveMarket:
    """Trades from ``day`` (a UTC midnight) on, with the bars of the ``serve`` intervals (and of
    their coarser multi-timeframe intervals) closed incrementally.

    Contract: the features of a served interval are asked in time order, each closed bar once
    (``features``); what only those bars read is then dropped."""

    def __init__(self, wh: Warehouse, needs: WarmupNeeds, config: FeatureConfig, serve: Sequence[str], day: date):
        self.wh, self.config, self.day = wh, config, day
        self.serve = list(dict.fromkeys(serve))
        self.keys = [(i, j) for i in self.serve for j in (i, *config.coarser(i))]  # (served, read)
        self.intervals = list(dict.fromkeys(j for _, j in self.keys))
        self.chunk_sizes = list(config.rush_chunks)
        self.history = History(wh, needs)
        start = day_start_us(day)
        self.closed_until = {j: start for j in self.intervals}  # end of the last closed bar
        self._chunks_until = {c: start for c in self.chunk_sizes}
        self._asked = {i: start for i in self.serve}  # end of the last bar whose features were asked
        # Per (served, read) interval: each token's bars from its resume row on (all, before its
        # first computation), and the resume rows; rows before a resume row are never read again.
        self._bars = {k: pl.DataFrame(schema=_bar_schema()) for k in self.keys}
        self._resume: dict[tuple[str, str], pl.DataFrame] = {}
        self._rush = {i: pl.DataFrame(schema=RUSH_SCHEMA) for i in self.serve}  # bars not asked yet
        self._chunks = {c: pl.DataFrame(schema=CHUNK_SCHEMA) for c in self.chunk_sizes}  # from resume chunks on
        self._chunk_resume: dict[str, pl.DataFrame] = {}
        self.days = pl.DataFrame(schema={"token": pl.String, "ts": TRADE_SCHEMA["ts"]})
        self._pending = pl.DataFrame(schema=TRADE_SCHEMA).select(TRADE_COLUMNS)  # trades of buckets still open
        self.known: set[str] = set()
        self.rows_computed: dict[str, int] = {}  # per interval read: bar rows the last features call computed
        self.trades_read = 0
        self.too_late = 0  # trades read after their bar had closed
        self.warnings: list[str] = []  # for the service's log

    def add(self, trades: pl.DataFrame) -> None:
        """Take newly read trades (``raw_trades`` columns); load the history of new tokens."""
        if trades.height == 0:
            return
        trades = trades.select(TRADE_COLUMNS).filter(pl.col("ts").dt.epoch("us") >= day_start_us(self.day))
        closed = max([*self.closed_until.values(), *self._chunks_until.values()])  # finest buckets close first
        self.too_late += int((trades["ts"].dt.epoch("us") < closed).sum())
        self.trades_read += trades.height
        self._pending = _merge_by_time(self._pending, trades)
        new = sorted(set(trades["token"].unique().to_list()) - self.known)
        if new:
            self._load_history(new)
            self.known.update(new)
        today = trades.select("token", pl.col("ts").dt.truncate("1d")).unique()
        self.days = pl.concat([self.days, today]).unique(maintain_order=True)

    def _load_history(self, tokens: list[str]) -> None:
        """The earlier days each new token's features read, as the day's partition plans them."""
        plan = self.history.plan_for(self.day, self.intervals, pl.DataFrame({"token": tokens}))
        if plan.missing:  # the daily partition of this day could not be built either
            self.warnings.append(f"live features of {len(tokens)} token(s) differ from the daily ones: {plan.reason()}")
        for j in self.intervals:
            read = _read_before(self.wh, "bars", {"interval": j}, self.day, plan.bars_from.get(j, {}), tokens)
            if read is not None:
                self._add_bars(j, read.select(bars_columns()))
        trades = _read_before(self.wh, "raw_trades", None, self.day, plan.trades_from, tokens)
        if trades is not None and trades.height:
            tables = TradeTables.of(trades.select(TRADE_COLUMNS))
            self.days = pl.concat([self.days, tables.days.cast(self.days.schema)]).unique(maintain_order=True)
            for c in self.chunk_sizes:
                self._chunks[c] = _append(self._chunks[c], tables.chunks(c))

    def _add_bars(self, interval: str, bars: pl.DataFrame) -> None:
        for key in self.keys:
            if key[1] == interval:
                self._bars[key] = _append(self._bars[key], bars)

    def close(self, clock_us: int) -> dict[str, tuple[int, int]]:
        """Close every bar (and La Morgia chunk) that ended at or before ``clock_us``; per
        interval, the ``(from, to)`` span of bar ends closed now (empty when none)."""
        closed: dict[str, tuple[int, int]] = {}
        for j in self.intervals:
            if (span := self._close_buckets(self.closed_until, j, clock_us)) is None:
                continue
            lo, until, rows = span
            if rows.height:
                self._add_bars(j, make_bars(rows, [j]).select(bars_columns()))
                if j in self._rush:
                    self._rush[j] = _append(self._rush[j], TradeTables.of(rows).rush(j))
            closed[j] = (lo, until)
        for c in self.chunk_sizes:
            if (span := self._close_buckets(self._chunks_until, c, clock_us)) is not None and span[2].height:
                self._chunks[c] = _append(self._chunks[c], TradeTables.of(span[2]).chunks(c))
        # Only trades of buckets still open are kept: at most one bar of the coarsest interval.
        keep = self._pending_index(min([*self.closed_until.values(), *self._chunks_until.values()]))
        self._pending = self._pending.slice(keep)
        return closed

    def _close_buckets(self, until_by: dict[str, int], size: str, clock_us: int) -> tuple[int, int, pl.DataFrame] | None:
        """Move ``until_by[size]`` to the last bucket end at or before the clock; the span closed
        and its pending trades, or None when no bucket closed."""
        lo, until = until_by[size], clock_us // interval_us(size) * interval_us(size)
        if until <= lo:
            return None
        until_by[size] = until
        return lo, until, self._pending_between(lo, until)

    def _pending_index(self, ts_us: int) -> int:
        return int(self._pending["ts"].search_sorted(_utc(ts_us), side="left"))

    def _pending_between(self, lo_us: int, hi_us: int) -> pl.DataFrame:
        """Pending trades with ``lo <= ts < hi`` (the pending trades are kept in time order, so a
        bucket's trades are a slice, found without scanning the rest)."""
        first = self._pending_index(lo_us)
        return self._pending.slice(first, self._pending_index(hi_us) - first)

    @property
    def pending_trades(self) -> int:
        """Trades held in memory: those of buckets some interval or chunk has not closed."""
        return self._pending.height

    @property
    def bars_held(self) -> int:
        """Bar rows held in memory, over every (served, read) interval."""
        return sum(frame.height for frame in self._bars.values())

    def closed_bars(self, interval: str, lo_us: int, hi_us: int) -> pl.DataFrame:
        """Closed bars of a served ``interval`` not asked yet, with ``lo <= ts`` and end ``<= hi``."""
        ts, step = pl.col("ts").dt.epoch("us"), interval_us(interval)
        return self._bars[(interval, interval)].filter((ts >= max(lo_us, day_start_us(self.day))) & (ts + step <= hi_us))

    def features(self, interval: str, tokens: Sequence[str], first_ts_us: int, end_us: int, tokens_meta: pl.DataFrame | None) -> pl.DataFrame:
        """Features of a served ``interval`` for the closed bars of ``tokens`` with
        ``first_ts_us <= ts`` and end ``<= end_us``: the feature code over each token's series
        from its resume row on (its whole history the first time), with the trade tables built so
        far."""
        who = pl.col("token").is_in(list(tokens))
        names = [interval, *self.config.coarser(interval)]
        frame = pl.concat([self._bars[(interval, j)].filter(who) for j in names])
        tables = TradeTables(
            self.days.filter(who), rush={interval: self._rush[interval].filter(who).sort("token", "ts")},
            chunks={c: self._chunks[c].filter(who).sort("token", "start", maintain_order=True) for c in self.chunk_sizes},
        )
        resume = SeriesState(
            bars={j: r for j in names if (r := self._resume.get((interval, j))) is not None},
            chunks=dict(self._chunk_resume),
        )
        out, states = features_from_tables(frame, interval, tables, tokens=tokens_meta, config=self.config,
                                           resume=resume, keep_state=True)
        self._asked[interval] = max(self._asked[interval], end_us)
        for j, state in states.bars.items():
            self.rows_computed[j] = state.height
            fresh = resume_points(state, j, self.config.spans if j == interval else (), next_row=j == interval)
            key = (interval, j)
            self._resume[key] = _merge_resume(self._resume.get(key), fresh)
            self._bars[key] = _from_resume_rows(self._bars[key], self._resume[key], "ts")
        # La Morgia chunks are shared by the served intervals: keep what the earliest bar any of
        # them may still ask reads.
        needed_after = min(self._asked.values())
        for c, state in states.chunks.items():
            fresh = chunk_resume_points(state, c, self.config.rush_chunks[c], needed_after)
            self._chunk_resume[c] = _merge_resume(self._chunk_resume.get(c), fresh)
            self._chunks[c] = _from_resume_rows(self._chunks[c], self._chunk_resume[c], "start")
        # Rush counts are read by their own bar only.
        step = interval_us(interval)
        self._rush[interval] = self._rush[interval].filter(pl.col("ts").dt.epoch("us") + step > end_us)
        ts = pl.col("ts").dt.epoch("us")
        return out.filter((ts >= first_ts_us) & (ts + step <= end_us))


def _bar_schema() -> dict[str, pl.DataType]:
    return {c: BAR_SCHEMA[c] for c in bars_columns()}


def _append(frame: pl.DataFrame, more: pl.DataFrame) -> pl.DataFrame:
    out = pl.concat([frame, more.cast(frame.schema)])
    return out.rechunk() if out.n_chunks() > _MAX_CHUNKS else out


def _utc(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)


def _merge_by_time(pending: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """``pending`` (in time order) with ``new`` merged in, still in time order; only the pending
    rows later than the earliest new trade (the late-commit window) are sorted again."""
    new = new.sort("ts", maintain_order=True)
    if pending.height == 0:
        return new
    cut = int(pending["ts"].search_sorted(new["ts"][0], side="right"))
    if cut == pending.height:
        return _append(pending, new)
    tail = pl.concat([pending.slice(cut), new.cast(pending.schema)]).sort("ts", maintain_order=True)
    return _append(pending.slice(0, cut), tail)


def _from_resume_rows(rows: pl.DataFrame, resume: pl.DataFrame | None, key: str) -> pl.DataFrame:
    """Each token's rows from its resume row on (all of them for a token without one)."""
    if resume is None or resume.height == 0:
        return rows
    cut = resume.select("token", pl.col(key).alias("_from"))
    return rows.join(cut, on="token", how="left", maintain_order="left").filter(
        pl.col("_from").is_null() | (pl.col(key) >= pl.col("_from"))).drop("_from")


def _merge_resume(old: pl.DataFrame | None, fresh: pl.DataFrame) -> pl.DataFrame:
    """The newest resume row of each token (a token computed now replaces its older row)."""
    if old is None or old.height == 0:
        return fresh
    return pl.concat([old.filter(~pl.col("token").is_in(fresh["token"].implode())), fresh])


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

