"""How far back a day's features read: each feature family's history, walked back day by day
until its window is full.

Windows count different things. Bar-count windows and EMAs count bars of their interval (the
multi-timeframe features count bars of the coarser interval), La Morgia windows count non-empty
buy chunks, wall-clock spans count time. An illiquid token fills a 900-chunk window over several
days and a liquid one within the hour, so the reach is found per token from per-day counts, not
from the calendar. A token's walk stops once the window is full, after ``max_gap`` days without a
trade (its series restarts there, ``lib/features.py``), or at ``max_warmup_days`` or the first
partition day. A day inside that reach whose partition was never materialized makes the day
unbuildable: its features would silently differ from the continuous series.

Counts are read once per :class:`History` (one per run), so a long backfill reads each day's
counts once however many later days walk over it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial

import polars as pl

from alevor_assets.lib.feature_catalog import FeatureConfig
from alevor_assets.lib.intervals import day_start_us, duration_us, interval_us
from alevor_assets.lib.warehouse import Warehouse, days_between

_COUNTS = {"token": pl.Utf8, "day": pl.Date, "n": pl.Int64, "first_us": pl.Int64}
_FIRST_WINDOW_DAYS = 8


@dataclass(frozen=True)
class WarmupNeeds:
    """What a day's features need from earlier days, per family."""

    bars: int  # bars of an interval before the day (bar-count windows, EMAs, coarser mtf bars)
    span_us: int  # longest wall-clock window of the *_<span> features
    chunks: Mapping[str, int]  # La Morgia chunk -> non-empty buy chunks before the day
    max_gap_days: int
    max_days: int
    first_day: date

    @classmethod
    def of(cls, config: FeatureConfig, warmup_bars: int, max_days: int, first_day: date) -> WarmupNeeds:
        # A chunk's value is the percent change of a rolling statistic: its window and one more.
        return cls(
            bars=warmup_bars,
            span_us=max((duration_us(s) for s in config.spans), default=0),
            chunks={c: w + 1 for c, w in config.rush_chunks.items()},
            max_gap_days=config.max_gap_days,
            max_days=max_days,
            first_day=first_day,
        )

    def lowest_day(self, day: date) -> date:
        return max(self.first_day, day - timedelta(days=self.max_days))


@dataclass(frozen=True)
class DayPlan:
    """Where each token's history starts for one day's features, or what is missing for it."""

    day: date
    bars_from: dict[str, dict[str, date]]  # interval -> token -> first day of bars to read
    trades_from: dict[str, date]  # token -> first day of trades to read (La Morgia chunks)
    missing: dict[str, list[date]] = field(default_factory=dict)  # input -> never materialized days it needs

    def reason(self) -> str | None:
        """Why the day cannot be built yet (None when it can)."""
        if not self.missing:
            return None
        by_days: dict[tuple[date, ...], list[str]] = {}
        for name, days in self.missing.items():
            by_days.setdefault(tuple(days), []).append(name)
        what = "; ".join(f"{_names(names)} of {_day_list(days)}" for days, names in by_days.items())
        inputs = sorted({name.split()[0] for name in self.missing})
        return (
            f"its warm-up needs {what}, never materialized; materialize {' and '.join(inputs)} for those days, "
            f"then {self.day.isoformat()} again"
        )


def _names(names: list[str]) -> str:
    """``bars interval=2s``, ``bars interval=1m``, ``raw_trades`` -> ``bars interval=2s, 1m and raw_trades``."""
    intervals = [n.removeprefix("bars interval=") for n in names if n.startswith("bars ")]
    parts = ([f"bars interval={', '.join(intervals)}"] if intervals else []) + [n for n in names if not n.startswith("bars ")]
    return " and ".join(parts)


def _day_list(days: Sequence[date]) -> str:
    days = sorted(days)
    if len(days) > 4 and (days[-1] - days[0]).days == len(days) - 1:
        return f"{days[0].isoformat()}..{days[-1].isoformat()}"
    shown = ", ".join(d.isoformat() for d in days[:6])
    return shown + (f" and {len(days) - 6} more" if len(days) > 6 else "")


class History:
    """Per-day, per-token counts of what each feature window counts, read once and kept; and the
    plan of every day built from them."""

    def __init__(self, wh: Warehouse, needs: WarmupNeeds):
        self.wh, self.needs = wh, needs
        self._bars: dict[tuple[str, date], pl.DataFrame | None] = {}
        self._chunks: dict[date, dict[str, pl.DataFrame] | None] = {}
        self._plans: dict[tuple[date, tuple[str, ...]], DayPlan] = {}

    def bar_counts(self, interval: str, day: date) -> pl.DataFrame | None:
        """``token, day, n, first_us``: bars of ``interval`` per token on ``day`` and the first
        one's start; None when the partition was never materialized."""
        key = (interval, day)
        if key not in self._bars:
            path = self.wh.partition_path("bars", day, {"interval": interval})
            self._bars[key] = None if not path.exists() else (
                pl.scan_parquet(path).group_by("token")
                .agg(pl.len().cast(pl.Int64).alias("n"), pl.col("ts").min().dt.epoch("us").alias("first_us"))
                .with_columns(pl.lit(day).alias("day")).select(list(_COUNTS)).collect()
            )
        return self._bars[key]

    def chunk_counts(self, day: date) -> dict[str, pl.DataFrame] | None:
        """Per La Morgia chunk size, ``token, day, n, first_us``: the non-empty buy chunks that
        start on ``day`` (0 for a token with only sells) and the token's first trade (under key
        ``""``: every token that traded); None when raw_trades of the day was never materialized."""
        if day not in self._chunks:
            path = self.wh.partition_path("raw_trades", day)
            if not path.exists():
                self._chunks[day] = None
            else:
                trades = pl.read_parquet(path, columns=["token", "ts", "side"]).with_columns(pl.col("ts").dt.epoch("us"))
                start = day_start_us(day)
                first = trades.group_by("token").agg(pl.col("ts").min().alias("first_us")).sort("token")
                out = {"": first.with_columns(pl.lit(0, pl.Int64).alias("n"), pl.lit(day).alias("day")).select(list(_COUNTS))}
                for chunk in self.needs.chunks:
                    step = interval_us(chunk)
                    # Chunks that start on this day (one straddling midnight counts for neither
                    # day, which can only make the walk read more).
                    buckets = trades.filter((pl.col("side") == "buy") & (pl.col("ts") // step * step >= start))
                    n = buckets.group_by("token").agg((pl.col("ts") // step).n_unique().cast(pl.Int64).alias("n"))
                    out[chunk] = (
                        first.join(n, on="token", how="left").with_columns(pl.col("n").fill_null(0), pl.lit(day).alias("day"))
                        .select(list(_COUNTS))
                    )
                self._chunks[day] = out
        return self._chunks[day]

    def _chunks_of(self, chunk: str, day: date) -> pl.DataFrame | None:
        counts = self.chunk_counts(day)
        return None if counts is None else counts[chunk]

    def plan(self, day: date, intervals: Iterable[str]) -> DayPlan:
        """Where each of the day's tokens starts reading bars of ``intervals`` (the feature
        intervals and their coarser multi-timeframe ones) and trades; or the missing days."""
        key = (day, tuple(dict.fromkeys(intervals)))
        if key not in self._plans:
            self._plans[key] = self._make_plan(day, key[1])
        return self._plans[key]

    def _make_plan(self, day: date, intervals: tuple[str, ...]) -> DayPlan:
        today = self.chunk_counts(day)
        tokens = today[""].select("token") if today else pl.DataFrame(schema={"token": pl.Utf8})
        return self.plan_for(day, intervals, tokens)

    def plan_for(self, day: date, intervals: Iterable[str], tokens: pl.DataFrame) -> DayPlan:
        """The plan of ``day`` for the given ``tokens`` (a ``token`` column), whatever the day's
        own partition holds: the live path plans the day that is still being traded."""
        intervals = tuple(dict.fromkeys(intervals))
        if tokens.height == 0:
            return DayPlan(day, {i: {} for i in intervals}, {})
        missing: dict[str, list[date]] = {}
        bars_from = {}
        for interval in intervals:
            reach = max(self.needs.span_us, interval_us(interval))
            starts, absent = self._walk(day, tokens, self.needs.bars, reach, partial(self.bar_counts, interval))
            bars_from[interval] = starts
            if absent:
                missing[f"bars interval={interval}"] = absent
        trades_from: dict[str, date] = {}
        for chunk, need in self.needs.chunks.items():
            starts, absent = self._walk(day, tokens, need, 0, partial(self._chunks_of, chunk))
            for token, first in starts.items():
                trades_from[token] = min(first, trades_from.get(token, first))
            if absent:
                missing["raw_trades"] = sorted(set(missing.get("raw_trades", [])) | set(absent))
        if not self.needs.chunks:
            trades_from = {t: day for t in tokens["token"]}
        return DayPlan(day, bars_from, trades_from, missing)

    def _walk(
        self, day: date, tokens: pl.DataFrame, need: int, reach_us: int, counts: Callable[[date], pl.DataFrame | None]
    ) -> tuple[dict[str, date], list[date]]:
        """Each token's first day to read, and the never-materialized days the walk must see."""
        lo = self.needs.lowest_day(day)
        width = _FIRST_WINDOW_DAYS
        while True:
            window_lo = max(lo, day - timedelta(days=width))
            days = days_between(window_lo, day - timedelta(days=1)) if window_lo < day else []
            loaded = {d: counts(d) for d in days}
            history = pl.concat([f for f in loaded.values() if f is not None] or [pl.DataFrame(schema=_COUNTS)])
            walked = walk_back(day, tokens, history, need, reach_us, self.needs.max_gap_days, window_lo, lo)
            if walked["conclusive"].all():
                break
            width *= 4
        examined_from = walked["examined"].min()
        absent = [d for d, f in loaded.items() if f is None and examined_from is not None and d >= examined_from]
        return dict(zip(walked["token"], walked["start"])), absent


def walk_back(
    day: date, tokens: pl.DataFrame, history: pl.DataFrame, need: int, reach_us: int, gap_days: int,
    window_lo: date, lo: date,
) -> pl.DataFrame:
    """One family's walk for each of the day's ``tokens`` over the per-day ``history`` counts of
    ``window_lo..day-1`` (``token, day, n, first_us``; a day without a token's row is a day
    without its trades).

    Going back from ``day``, a token's walk stops at the day where its count reaches ``need``
    with a row starting at least ``reach_us`` before the day (``start`` is that day), or after
    ``gap_days`` days without rows (``start`` is the earliest day read), or at ``lo``. Returns
    ``token, start, examined`` (the earliest day the walk had to look at: a missing partition
    there would change the answer) and ``conclusive`` (false when the window ended first).
    """
    d0 = day_start_us(day)
    today = tokens.select("token", pl.lit(day).alias("day"), pl.lit(0, pl.Int64).alias("n"), pl.lit(d0, pl.Int64).alias("first_us"))
    rows = pl.concat([today, history.join(tokens, on="token", how="semi").select(list(_COUNTS))])
    rows = rows.sort(["token", "day"], descending=[False, True])
    later = pl.col("day").shift(1).over("token")
    rows = rows.with_columns(
        gap=((later - pl.col("day")).dt.total_days() > gap_days).fill_null(False),
        ok=(pl.col("n").cum_sum().over("token") >= need) & (pl.col("first_us") <= d0 - reach_us),
    )
    stop = (pl.col("gap") | pl.col("ok").shift(1).over("token").fill_null(False)).cast(pl.Int8).cum_max().over("token")
    read = rows.filter(stop == 0).group_by("token").agg(pl.col("day").min().alias("start"), pl.col("ok").any().alias("satisfied"))
    gap = timedelta(days=gap_days)
    return read.with_columns(
        examined=pl.when("satisfied").then("start").otherwise(pl.max_horizontal(pl.col("start") - gap, pl.lit(lo))),
        conclusive=pl.col("satisfied") | (pl.col("start") - gap >= pl.lit(window_lo)) | pl.lit(window_lo <= lo),
    ).select("token", "start", "examined", "conclusive").sort("token")
