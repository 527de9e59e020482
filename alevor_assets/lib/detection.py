"""How well a detector's alerts find events: per event, and per token-day with data.

For a fold of scored rows (``token``, ``ts``) and the alerts raised on them (``lib/alerts.py``):

- **token-days with data**: the (token, UTC day) pairs with at least one row in the fold; false
  alerts are counted per token-day with data, never per calendar day.
- **the fold's events**: the labelled events of the detector's event types whose announced time
  lies in the fold's span (first row to last row's bar end) on a token-day with data. Events whose
  trades showed no pump (extent ``flat`` / ``no_data``) are listed but not counted.
- an event's **window** runs from its start (the earlier of ``start_time`` and
  ``announced_time``) minus ``pre_window`` to its end plus ``post_window``, which covers the dump
  after a pump. The event is **detected** when an alert of its token falls in its window; the
  **delay** is first alert - announced time (negative when the alert came before the
  announcement). ``timely`` events are detected with a delay of at most ``timely``.
- a **false alert** is an alert outside the window of every known event of its token (of any type
  and extent, inside the fold or not): alerts during the dump right after a pump belong to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from alevor_assets.lib.event_extents import UNMOVED
from alevor_assets.lib.intervals import duration_or_zero
from alevor_assets.lib.schemas import UTC_US

DAY_US = 86_400_000_000
EVENT_FRAME = {"token": pl.Utf8, "type": pl.Utf8, "start_time": UTC_US, "end_time": UTC_US,
               "announced_time": UTC_US, "extent": pl.Utf8}


@dataclass(frozen=True)
class DetectionRules:
    """A detector spec's ``alerts:``: how scores become alerts and how alerts meet events."""

    cooldown: timedelta = timedelta(minutes=15)
    pre_window: timedelta = timedelta(0)
    post_window: timedelta = timedelta(hours=1)
    timely: timedelta = timedelta(seconds=30)

    @classmethod
    def from_spec(cls, raw: dict[str, Any] | None) -> DetectionRules:
        raw = raw or {}
        unknown = set(raw) - {"cooldown", "pre_window", "post_window", "timely"}
        if unknown:
            raise ValueError(f"alerts: unknown field(s) {sorted(unknown)}; allowed: cooldown, pre_window, post_window, timely")
        return cls(**{k: duration_or_zero(v) for k, v in raw.items()})

    def describe(self) -> str:
        def s(t: timedelta) -> str:
            return f"{t.total_seconds():g} s"

        return (f"one alert per token per {s(self.cooldown)} (cooldown); an alert counts for an event from "
                f"{s(self.pre_window)} before its start to {s(self.post_window)} after its end; timely = "
                f"within {s(self.timely)} of the announced start")


@dataclass(frozen=True)
class DetectionSetup:
    """What evaluating a detector needs besides its scores: every known event of the span
    (``EVENT_FRAME`` columns), the event types it detects, its bar length (a score is known when
    its bar closes) and its rules."""

    events: pl.DataFrame
    event_types: tuple[str, ...]
    step: timedelta
    rules: DetectionRules = DetectionRules()


@dataclass
class DetectionResult:
    metrics: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)


def as_event_frame(events: pl.DataFrame | None) -> pl.DataFrame:
    """Labelled events in ``EVENT_FRAME`` columns (events without extent columns count as given)."""
    if events is None or events.height == 0:
        return pl.DataFrame(schema=EVENT_FRAME)
    if "announced_time" not in events.columns:
        events = events.with_columns(pl.col("start_time").alias("announced_time"))
    if "extent" not in events.columns:
        events = events.with_columns(pl.lit("given").alias("extent"))
    return events.select(list(EVENT_FRAME)).cast(EVENT_FRAME).unique(maintain_order=True)  # type: ignore[arg-type]


def label_episodes(rows: pl.DataFrame, step: timedelta) -> pl.DataFrame:
    """Runs of positive labels (``label > 0``) of a token, bars at most one ``step`` apart, as
    events: the events of a detector whose labels come from prices alone."""
    pos = rows.filter(pl.col("label") > 0).select("token", "ts").unique().sort("token", "ts")
    if pos.height == 0:
        return pl.DataFrame(schema=EVENT_FRAME)
    gap = (pl.col("ts") - pl.col("ts").shift(1).over("token")) > step
    runs = pos.with_columns((gap.fill_null(True)).cum_sum().over("token").alias("_run"))
    return runs.group_by("token", "_run").agg(
        pl.col("ts").min().alias("start_time"), (pl.col("ts").max() + step).alias("end_time"),
    ).select(
        "token", pl.lit("pump").alias("type"), "start_time", "end_time",
        pl.col("start_time").alias("announced_time"), pl.lit("given").alias("extent"),
    ).sort("token", "start_time").cast(EVENT_FRAME)  # type: ignore[arg-type]


def event_windows(events: pl.DataFrame, rules: DetectionRules) -> pl.DataFrame:
    """``token``, ``w_start``, ``w_end`` (µs) of each event's window."""
    start = pl.min_horizontal("start_time", "announced_time").dt.epoch("us")
    pre, post = int(rules.pre_window / timedelta(microseconds=1)), int(rules.post_window / timedelta(microseconds=1))
    return events.select("token", (start - pre).alias("w_start"), (pl.col("end_time").dt.epoch("us") + post).alias("w_end"))


def in_any_window(token: pl.Series, ts_us: np.ndarray, windows: pl.DataFrame) -> np.ndarray:
    """For each (token, ts) row: does it fall inside a window of its token?"""
    if windows.height == 0 or len(ts_us) == 0:
        return np.zeros(len(ts_us), dtype=bool)
    rows = pl.DataFrame({"token": token, "t": ts_us}).with_row_index("_i")
    hits = rows.join(windows, on="token", how="inner").filter(
        (pl.col("t") >= pl.col("w_start")) & (pl.col("t") < pl.col("w_end"))
    )["_i"].unique().to_numpy()
    mask = np.zeros(len(ts_us), dtype=bool)
    mask[hits] = True
    return mask


def token_days(token: pl.Series, ts_us: np.ndarray) -> pl.DataFrame:
    """The (token, UTC day number) pairs with at least one row."""
    return pl.DataFrame({"token": token, "day": np.asarray(ts_us, dtype=np.int64) // DAY_US}).unique()


def evaluate_detections(
    rows: pl.DataFrame, alerts: pl.DataFrame, setup: DetectionSetup
) -> DetectionResult:
    """Per-event outcomes and detector metrics of ``alerts`` (``token``, ``ts`` µs UTC) raised on
    the fold's scored ``rows`` (``token``, ``ts``: bar starts)."""
    rules, step_us = setup.rules, int(setup.step / timedelta(microseconds=1))
    ts = rows["ts"].dt.epoch("us").to_numpy()
    days = token_days(rows["token"], ts)
    lo, hi = (int(ts.min()), int(ts.max()) + step_us) if len(ts) else (0, 0)
    events = as_event_frame(setup.events)
    windows = event_windows(events, rules)
    alert_us = alerts["ts"].dt.epoch("us").to_numpy()
    false = ~in_any_window(alerts["token"], alert_us, windows)
    announced = pl.col("announced_time").dt.epoch("us")
    fold_events = events.filter(
        pl.col("type").is_in(list(setup.event_types)) & (announced >= lo) & (announced < hi)
    ).with_columns((announced // DAY_US).alias("day")).join(
        days.with_columns(pl.lit(True).alias("has_rows")), on=["token", "day"], how="left"
    ).sort("announced_time", "token")
    table = [_outcome(ev, alerts, rules) for ev in fold_events.iter_rows(named=True)]
    counted = [e for e in table if e["outcome"] in ("detected", "missed")]
    delays = np.array([e["delay_s"] for e in counted if e["outcome"] == "detected"], dtype=float)
    timely = int(np.sum(delays <= rules.timely.total_seconds()))
    n, n_days = len(counted), days.height
    metrics = {
        "events": n,
        "events_detected": len(delays),
        "event_recall": len(delays) / n if n else None,
        "events_detected_timely": timely,
        "event_recall_timely": timely / n if n else None,
        "detection_delay_s": float(np.median(delays)) if len(delays) else None,
        "detection_delay_max_s": float(delays.max()) if len(delays) else None,
        "events_not_counted": len(table) - n,
        "alerts": int(len(alert_us)),
        "false_alerts": int(false.sum()),
        "token_days": n_days,
        "false_alerts_per_token_day": float(false.sum()) / n_days if n_days else None,
    }
    return DetectionResult(metrics, table)


def _when(t: Any) -> str | None:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t is not None else None


def _outcome(ev: dict[str, Any], alerts: pl.DataFrame, rules: DetectionRules) -> dict[str, Any]:
    """One event of the fold: ``token``, ``announced``, ``extent``, ``first_alert`` (UTC text),
    ``delay_s`` and ``outcome`` (detected, missed, or why it is not counted)."""
    row: dict[str, Any] = {"token": ev["token"], "announced": _when(ev["announced_time"]), "extent": ev["extent"],
                           "first_alert": None, "delay_s": None}
    start = min(ev["start_time"], ev["announced_time"]) - rules.pre_window
    mine = alerts.filter(
        (pl.col("token") == ev["token"]) & (pl.col("ts") >= start) & (pl.col("ts") < ev["end_time"] + rules.post_window)
    )
    if mine.height:
        first = mine["ts"].min()
        row.update(first_alert=_when(first), delay_s=(first - ev["announced_time"]).total_seconds())  # type: ignore[operator]
    if ev["extent"] in UNMOVED:
        row["outcome"] = f"not counted: {ev['extent']}"
    elif not ev["has_rows"]:
        row["outcome"] = "not counted: no rows that day"
    else:
        row["outcome"] = "detected" if mine.height else "missed"
    return row
