"""How far a pump known only by its announced start really went, derived from the trades.

Real pump lists give the time a pump group announced the coin, not when the pump ended. For such
a *start-only* event (``end_time`` null) of token T announced at A, with the rules in
``pipeline.yaml`` ``events:`` (``lead``, ``peak_window``, ``min_rise``):

- the **search window** is ``[A - lead, A + peak_window]`` (announcements are minute-precision and
  some groups start seconds early, hence the lead);
- the **reference price** is the last trade of T before the window (within the day before it);
- the **peak** is the first trade at the highest price in the window; ``rise = peak / reference - 1``;
- ``rise >= min_rise``: extent ``derived``, the pump runs from A to its peak (``end_time`` = peak
  trade + 1 µs, so the bar holding the peak belongs to it). When the peak came before A (the
  announced minute was late), it runs from the breakout instead: the first trade of the window at
  least ``min_rise`` above the reference;
- ``rise < min_rise`` or no trade in the window: extent ``flat`` (the announcement did not move
  the price); no trade before the window: extent ``no_data``. Both keep the whole search window
  as their extent, so label strategies can leave those bars out (neither pump nor negative) and
  evaluation counts them apart.

Events that come with an end keep it (extent ``given``). Every event keeps ``announced_time``,
the start it was listed with: detection delays are measured from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from alevor_assets.lib.intervals import duration, duration_or_zero
from alevor_assets.lib.report import table
from alevor_assets.lib.schemas import EVENT_EXTENTS, UTC_US
from alevor_assets.lib.sources.events import events_on
from alevor_assets.lib.warehouse import Warehouse

EXTENTS = EVENT_EXTENTS
# Extents that did not show a pump in the trades: excluded from labels and from event counts.
UNMOVED = ("flat", "no_data")
EXTENT_COLUMNS = {
    "token": pl.Utf8, "type": pl.Utf8, "start_time": UTC_US, "end_time": UTC_US, "announced_time": UTC_US,
    "extent": pl.Utf8, "reference_price": pl.Float64, "peak_price": pl.Float64, "rise": pl.Float64,
}
DAY = timedelta(days=1)


@dataclass(frozen=True)
class ExtentRules:
    """The ``events:`` settings of pipeline.yaml (see the module docstring)."""

    lead: timedelta = timedelta(minutes=1)
    peak_window: timedelta = timedelta(minutes=5)
    min_rise: float = 0.02

    def __post_init__(self) -> None:
        if self.lead < timedelta(0) or self.peak_window <= timedelta(0):
            raise ValueError("events: lead must be >= 0 and peak_window > 0")
        if not self.min_rise > 0:
            raise ValueError(f"events: min_rise must be > 0, got {self.min_rise}")

    @property
    def reach(self) -> timedelta:
        """How far from its announced start a start-only event can reach."""
        return max(self.lead, self.peak_window)

    @classmethod
    def from_settings(cls, raw: dict[str, Any] | None) -> ExtentRules:
        raw = raw or {}
        unknown = set(raw) - {"lead", "peak_window", "min_rise"}
        if unknown:
            raise ValueError(f"pipeline.yaml events: unknown key(s) {sorted(unknown)}; allowed: lead, peak_window, min_rise")
        return cls(
            lead=duration_or_zero(raw.get("lead", "1m")),
            peak_window=duration(str(raw.get("peak_window", "5m"))),
            min_rise=float(raw.get("min_rise", 0.02)),
        )


def given_extents(events: pl.DataFrame) -> pl.DataFrame:
    """Events that come with their end, in the labelled_events columns (extent ``given``)."""
    return events.select(
        "token", "type", "start_time", "end_time",
        pl.col("start_time").alias("announced_time"),
        pl.lit("given").alias("extent"),
        *(pl.lit(None, pl.Float64).alias(c) for c in ("reference_price", "peak_price", "rise")),
    )


def derive_extent(trades: pl.DataFrame, announced: datetime, rules: ExtentRules) -> dict[str, Any]:
    """The extent of one start-only event from its token's trades (``ts``, ``price``, in
    (ts, trade_id) order) around ``announced``."""
    lo, hi = announced - rules.lead, announced + rules.peak_window
    lo_c, hi_c = pl.lit(lo).cast(UTC_US), pl.lit(hi).cast(UTC_US)
    window = trades.filter((pl.col("ts") >= lo_c) & (pl.col("ts") <= hi_c))
    before = trades.filter((pl.col("ts") < lo_c) & (pl.col("ts") >= pl.lit(lo - DAY).cast(UTC_US)))
    unmoved = {"start_time": lo, "end_time": hi, "peak_price": None, "rise": None}
    if before.height == 0:
        return {**unmoved, "extent": "no_data", "reference_price": None}
    reference = float(before["price"][-1])
    if window.height == 0:
        return {**unmoved, "extent": "flat", "reference_price": reference}
    top = int(window["price"].arg_max())
    peak, peak_ts = float(window["price"][top]), window["ts"][top]
    rise = peak / reference - 1
    if rise < rules.min_rise:
        return {**unmoved, "extent": "flat", "reference_price": reference, "peak_price": peak, "rise": rise}
    start = announced
    if peak_ts < announced:
        start = window.filter(pl.col("price") >= reference * (1 + rules.min_rise))["ts"][0]
    return {
        "start_time": start, "end_time": peak_ts + timedelta(microseconds=1),
        "extent": "derived", "reference_price": reference, "peak_price": peak, "rise": rise,
    }


def derive_extents(events: pl.DataFrame, trades: pl.DataFrame, rules: ExtentRules) -> pl.DataFrame:
    """Every event in the labelled_events columns: those with an end as ``given``, start-only
    ones (null ``end_time``) derived from ``trades`` (``token, ts, price`` and ``trade_id``)."""
    given = given_extents(events.filter(pl.col("end_time").is_not_null()))
    open_events = events.filter(pl.col("end_time").is_null())
    trades = trades.sort("token", "ts", "trade_id") if trades.height else trades
    rows = []
    for ev in open_events.iter_rows(named=True):
        mine = trades.filter(pl.col("token") == ev["token"]) if trades.height else trades
        rows.append({"token": ev["token"], "type": ev["type"], "announced_time": ev["start_time"],
                     **derive_extent(mine, ev["start_time"], rules)})
    derived = pl.DataFrame(rows, schema=EXTENT_COLUMNS, orient="row").select(list(EXTENT_COLUMNS))
    return pl.concat([given.cast(EXTENT_COLUMNS), derived]).sort("token", "start_time", "type")  # type: ignore[arg-type]


def day_events(wh: Warehouse, day: date, events: pl.DataFrame, rules: ExtentRules) -> pl.DataFrame:
    """The labelled_events partition of ``day``: ``events`` (the source's events near the day,
    start-only ones with a null end) with their extents, restricted to those overlapping the day.
    Start-only events read the raw_trades of the days their search window and reference touch."""
    open_events = events.filter(pl.col("end_time").is_null())
    trades = pl.DataFrame(schema={"token": pl.Utf8, "ts": UTC_US, "price": pl.Float64, "trade_id": pl.Int64})
    if open_events.height:
        first = (open_events["start_time"].min() - rules.lead - DAY).date()  # type: ignore[operator]
        last = (open_events["start_time"].max() + rules.peak_window).date()  # type: ignore[operator]
        scanned = wh.scan_tokens("raw_trades", first, last, None, open_events["token"].unique().to_list())
        if scanned is not None:
            trades = scanned.select("token", "ts", "price", "trade_id").collect()
    return events_on(derive_extents(events, trades, rules), day)


def unmoved_events(events: pl.DataFrame) -> pl.DataFrame:
    """Events whose trades showed no pump (extent ``flat`` or ``no_data``)."""
    return events.filter(pl.col("extent").is_in(list(UNMOVED))) if "extent" in events.columns else events.head(0)


def extent_summary(events: pl.DataFrame) -> tuple[dict[str, int], str]:
    """How many distinct events have each extent, and a Markdown table of those that showed no
    pump (what the labelled_events materialization reports)."""
    distinct = events.unique(["token", "type", "announced_time"]).sort("announced_time", "token")
    counts = {e: int((distinct["extent"] == e).sum()) for e in EXTENTS}
    unmoved = unmoved_events(distinct).with_columns(
        pl.col("announced_time").dt.strftime("%Y-%m-%d %H:%M:%S"), pl.col("rise") * 100,
    ).rename({"rise": "rise_pct"})
    if unmoved.height == 0:
        return counts, "Every event with an announced start only moved the price."
    cols = ["token", "announced_time", "extent", "reference_price", "peak_price", "rise_pct"]
    return counts, table(unmoved.select(cols).to_dicts(), cols)
