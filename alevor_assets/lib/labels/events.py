"""Pump labels: bars that overlap a labelled pump event (``pump_events``, and ``early_pump`` for
young tokens only), and pump-and-dump run-ups found from prices alone (``heuristic_pump_dump``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

import polars as pl

from alevor_assets.lib.event_extents import unmoved_events
from alevor_assets.lib.intervals import duration, duration_us, interval_timedelta, interval_us
from alevor_assets.lib.labels.base import LabelContext, LabelStrategy, _check_positive, register_label_strategy
from alevor_assets.lib.labels.kernels import _arrays, _pump_dump
from alevor_assets.lib.schemas import UTC_US


def _overlapping(bars: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """``token, ts`` of the bars (``start``/``end`` in µs) that overlap an event of their token."""
    return (
        bars.join(events, on="token", how="inner")
        .filter((pl.col("start") < pl.col("e_end")) & (pl.col("end") > pl.col("e_start")))
        .select("token", "ts")
        .unique()
    )


@register_label_strategy
@dataclass(frozen=True)
class PumpEvents(LabelStrategy):
    """Bars that overlap a labelled pump (and optionally dump) interval of their token.

    ``classes`` maps event types to label values; every other bar is 0. The default is the binary
    pump detector target; ``{pump: 1, dump: 2}`` gives the three-class variant. Bars that overlap
    an event whose trades showed no pump (extent ``flat`` or ``no_data``, see
    ``lib/event_extents.py``) are left out: neither a pump nor a negative example.
    """

    name: ClassVar[str] = "pump_events"
    task: ClassVar[str] = "classification"
    detects_events: ClassVar[bool] = True
    needs_events: ClassVar[bool] = True
    classes: dict[str, int] = dataclasses.field(default_factory=lambda: {"pump": 1})

    def compute(self, ctx: LabelContext) -> pl.DataFrame:
        step = interval_us(ctx.interval)
        bars = ctx.bars.select("token", "ts").with_columns(
            start=pl.col("ts").dt.epoch("us"), end=pl.col("ts").dt.epoch("us") + step
        )
        label = pl.lit(0, dtype=pl.Int64)
        events = ctx.events if ctx.events is not None else pl.DataFrame(
            schema={"token": pl.Utf8, "type": pl.Utf8, "start_time": UTC_US, "end_time": UTC_US}
        )
        events = events.with_columns(
            e_start=pl.col("start_time").dt.epoch("us"), e_end=pl.col("end_time").dt.epoch("us")
        )
        unmoved = unmoved_events(events).select("token", "e_start", "e_end")
        if unmoved.height:
            bars = bars.join(_overlapping(bars, unmoved), on=["token", "ts"], how="anti", maintain_order="left")
        # Lower class values first, so a bar touching both a pump and a dump takes the larger value.
        for event_type, value in sorted(self.classes.items(), key=lambda kv: kv[1]):
            ev = events.filter(pl.col("type") == event_type).select("token", "e_start", "e_end")
            hit = _overlapping(bars, ev).with_columns(pl.lit(True).alias(f"_hit_{event_type}"))
            bars = bars.join(hit, on=["token", "ts"], how="left", maintain_order="left")
            label = pl.when(pl.col(f"_hit_{event_type}").fill_null(False)).then(pl.lit(value, pl.Int64)).otherwise(label)
        return bars.select(
            "token", "ts", label.alias("label"),
            horizon_end=(pl.col("end")).cast(pl.Int64).cast(UTC_US),
        )


@register_label_strategy
@dataclass(frozen=True)
class HeuristicPumpDump(LabelStrategy):
    """Pump run-ups found from prices alone, for data without labelled events (classification).

    A bar is labelled 1 when both hold, else 0:

    - **rise**: the highest close of the token's bars that start in ``(ts, ts + window]`` (the
      peak; its first occurrence, at ``peak_ts``) is ``>= close * (1 + rise)``;
    - **dump**: the lowest close of the token's bars that start in ``(peak_ts, peak_ts +
      dump_window]`` is ``<= peak * (1 - drop)``.

    ``horizon_end = ts + window + dump_window + interval``.

    Parameters: ``rise`` (0.15, fraction), ``window`` (``"15m"``, run-up window), ``drop`` (0.10,
    fraction of the peak), ``dump_window`` (``"15m"``, window after the peak).
    """

    name: ClassVar[str] = "heuristic_pump_dump"
    task: ClassVar[str] = "classification"
    detects_events: ClassVar[bool] = True
    rise: float = 0.15
    window: str = "15m"
    drop: float = 0.10
    dump_window: str = "15m"

    def __post_init__(self) -> None:
        _check_positive("rise", self.rise)
        _check_positive("drop", self.drop)
        duration_us(self.window), duration_us(self.dump_window)

    def look_ahead(self, interval: str) -> timedelta:
        return interval_timedelta(interval) + duration(self.window) + duration(self.dump_window)

    def compute(self, ctx: LabelContext) -> pl.DataFrame:
        a = _arrays(ctx.bars)
        window, dump = duration_us(self.window), duration_us(self.dump_window)
        label = _pump_dump(a.col("close"), a.end(window), a.end(dump), a.seg_end, float(self.rise), float(self.drop))
        return a.output(label, a.ts + window + dump + interval_us(ctx.interval))


@register_label_strategy
@dataclass(frozen=True)
class EarlyPump(LabelStrategy):
    """``pump_events`` restricted to young tokens (classification).

    A bar gets the ``pump_events`` label (``classes`` maps event types to label values; a bar
    that overlaps an event of its token takes that value, every other bar 0) when the token's age
    at the bar, ``ts - created_at``, is ``<= max_age_hours``; bars of older tokens and of tokens
    whose ``created_at`` is unknown are not labelled (left out). ``horizon_end = ts + interval``.

    Parameters: ``max_age_hours`` (48.0), ``classes`` (``{"pump": 1}``).
    """

    name: ClassVar[str] = "early_pump"
    task: ClassVar[str] = "classification"
    detects_events: ClassVar[bool] = True
    needs_events: ClassVar[bool] = True
    needs_token_age: ClassVar[bool] = True
    max_age_hours: float = 48.0
    classes: dict[str, int] = dataclasses.field(default_factory=lambda: {"pump": 1})

    def __post_init__(self) -> None:
        _check_positive("max_age_hours", self.max_age_hours)

    def compute(self, ctx: LabelContext) -> pl.DataFrame:
        labelled = PumpEvents(classes=self.classes).compute(ctx)
        if ctx.tokens is None or "created_at" not in ctx.tokens.columns:
            return labelled.head(0)
        created = (
            ctx.tokens.select("token", pl.col("created_at").cast(UTC_US))
            .drop_nulls("created_at")
            .group_by("token")
            .agg(pl.col("created_at").min())
        )
        max_age_us = int(round(self.max_age_hours * 3_600_000_000))
        age = pl.col("ts").dt.epoch("us") - pl.col("created_at").dt.epoch("us")
        return (
            labelled.join(created, on="token", how="inner", maintain_order="left")
            .filter(age <= max_age_us)
            .drop("created_at")
        )
