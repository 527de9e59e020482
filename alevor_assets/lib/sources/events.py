"""Labelled events (pump and dump intervals per token) from a CSV file or a table.

Accepted columns: ``token, type, start_time, end_time`` with type ``pump`` or ``dump``, or the
variant ``token, class_id, start_time, end_time`` with class_id 1 = pump, 2 = dump. ``type`` /
``class_id`` may be left out (every event is then a pump) and so may ``end_time`` (or a row may
leave it empty): a real pump list usually gives only the announced start, and the
``labelled_events`` asset derives such an event's extent from the trades (``event_extents.py``).
Times are ISO-8601 text with a zone (``Z`` or ``+hh:mm``) or integer epochs (seconds,
milliseconds or microseconds, told apart by magnitude). A bad row is an error naming the file and
line.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from alevor_assets.lib.schemas import ORIGIN_COLUMN, UTC_US
from alevor_assets.lib.sources import SourceError

EVENT_COLUMNS = ["token", "type", "start_time", "end_time"]
CLASS_IDS = {"1": "pump", "2": "dump"}


def _epoch_to_us(col: pl.Expr) -> pl.Expr:
    return (
        pl.when(col.abs() >= 10**14).then(col)
        .when(col.abs() >= 10**11).then(col * 1_000)
        .otherwise(col * 1_000_000)
    )


def parse_times(text: pl.Expr) -> pl.Expr:
    """ISO-8601 text with a zone, or an integer epoch, to µs UTC (null when neither)."""
    as_int = text.str.strip_chars().cast(pl.Int64, strict=False)
    has_zone = text.str.contains(r"(Z|[+-]\d{2}:?\d{2})$")
    iso = text.str.strip_chars().str.to_datetime(time_zone="UTC", time_unit="us", strict=False)
    return pl.when(as_int.is_not_null()).then(_epoch_to_us(as_int).cast(UTC_US)).when(has_zone).then(iso)


def normalize_events(raw: pl.DataFrame, where: str) -> pl.DataFrame:
    """Raw text columns (plus ``_origin``) to ``token, type, start_time, end_time`` (``end_time``
    null for a start-only event); any bad row raises."""
    kind = "type" if "type" in raw.columns else "class_id" if "class_id" in raw.columns else None
    missing = [c for c in ("token", "start_time") if c not in raw.columns]
    if missing:
        raise SourceError(
            f"{where}: labelled events need columns token, start_time (and optionally type or class_id, "
            f"end_time); missing {missing}"
        )
    if kind is None:
        raw = raw.with_columns(pl.lit("pump").alias("type"))
        kind = "type"
    if "end_time" not in raw.columns:
        raw = raw.with_columns(pl.lit(None, pl.Utf8).alias("end_time"))
    text = raw.with_columns(pl.col(c).cast(pl.Utf8) for c in ("token", kind, "start_time", "end_time"))
    kind_text = pl.col(kind).str.strip_chars().str.to_lowercase()
    typ = kind_text.replace_strict(CLASS_IDS, default=None) if kind == "class_id" else kind_text
    end_given = pl.col("end_time").is_not_null() & (pl.col("end_time").str.strip_chars() != "")
    out = text.with_columns(
        typ.alias("type_"),
        parse_times(pl.col("start_time")).alias("start_"),
        parse_times(pl.col("end_time")).alias("end_"),
        end_given.alias("_end_given"),
    )
    problem = (
        pl.when(pl.col("token").is_null() | (pl.col("token").str.strip_chars() == "")).then(pl.lit("token is empty"))
        .when(~pl.col("type_").is_in(["pump", "dump"]) | pl.col("type_").is_null())
        .then(pl.lit("type must be pump or dump (class_id 1 or 2)"))
        .when(pl.col("start_").is_null()).then(pl.lit("start_time is not a time with a zone"))
        .when(pl.col("_end_given") & pl.col("end_").is_null()).then(pl.lit("end_time is not a time with a zone"))
        .when(pl.col("end_") <= pl.col("start_")).then(pl.lit("end_time must be after start_time"))
    )
    out = out.with_columns(problem.alias("_problem"))
    bad = out.filter(pl.col("_problem").is_not_null())
    if bad.height:
        lines = [f"{r[ORIGIN_COLUMN]}: {r['_problem']}" for r in bad.head(10).iter_rows(named=True)]
        raise SourceError(f"{where}: {bad.height} bad labelled event(s):\n  " + "\n  ".join(lines))
    return out.select(
        pl.col("token").str.strip_chars(), pl.col("type_").alias("type"),
        pl.col("start_").alias("start_time"), pl.col("end_").alias("end_time"),
    ).sort("token", "start_time", "type")


def read_events_csv(path: str | Path) -> pl.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"labelled events file {path} does not exist")
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        raise SourceError(f"{path}: cannot parse as CSV: {exc}") from exc
    raw = raw.with_row_index("_line", offset=2).with_columns(
        pl.format("{}:{}", pl.lit(str(path)), pl.col("_line")).alias(ORIGIN_COLUMN)
    )
    return normalize_events(raw, str(path))


def events_on(events: pl.DataFrame, day: date, margin: timedelta = timedelta(0)) -> pl.DataFrame:
    """Events that overlap the UTC ``day`` widened by ``margin`` on both sides; an event without
    an end counts as the instant of its start."""
    lo = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) - margin
    hi = lo + timedelta(days=1) + 2 * margin
    end = pl.coalesce(pl.col("end_time"), pl.col("start_time") + pl.duration(microseconds=1))
    return events.filter((pl.col("start_time") < pl.lit(hi).cast(UTC_US)) & (end > pl.lit(lo).cast(UTC_US)))


def empty_events() -> pl.DataFrame:
    return pl.DataFrame(schema={"token": pl.Utf8, "type": pl.Utf8, "start_time": UTC_US, "end_time": UTC_US})
