"""Trades from files: CSV (plain, ``.csv.gz`` or inside a ``.zip``) and Parquet, matched by a glob.

Three formats, chosen with ``fmt`` or detected per file from its header (``fmt="auto"``):

``canonical``
    ``token, ts, price, amount, side`` and optionally ``trade_id`` (CSV or Parquet). ``ts`` is
    ISO-8601 text that carries a zone (``Z`` or ``+hh:mm``), an integer epoch, or (Parquet) a time
    zone-aware timestamp column.
``ccxt``
    ccxt's trades export ``symbol,timestamp,datetime,side,price,amount`` (``timestamp`` in epoch
    milliseconds; ``datetime`` and extra columns such as ``cost``, ``fee``, ``takerOrMaker`` are
    ignored). The token is ``symbol`` as is (``BTC/USDT``). An ``id`` column is the trade id when
    every value in the file is an integer.
``binance_aggtrades``
    Binance's public aggTrades CSV ``agg_trade_id,price,quantity,first_trade_id,last_trade_id,
    transact_time,is_buyer_maker[,is_best_match]``, with or without a header line (a first line of
    7 or 8 fields that are all numbers or ``true``/``false`` is data). The token is the file name
    (the zip member's name for a zip) up to its first ``-``; ``side`` is ``sell`` when
    ``is_buyer_maker`` is true (the taker sold), else ``buy``.

Integer epoch timestamps are read by magnitude, value by value: ``>= 1e14`` microseconds (Binance
spot files from 2025), ``>= 1e11`` milliseconds, otherwise seconds. This is unambiguous for any
instant between 1973 and 5138, so every file whose values share one unit (and a file that mixes
them) is read right.

Every row gets ``_origin``: ``<path>:<line>`` with 1-based physical line numbers (the header is
line 1), ``<zip path>!<member>:<line>`` inside a zip, ``<path>:row <n>`` (0-based) for Parquet.
A row that cannot be converted (wrong number of fields, a value of the wrong type, a timestamp
without zone, an unknown side) is returned in ``TradeBatch.rejected`` with the rule it broke and
its text, never dropped. A rejected row whose time is known belongs to that day; one whose time is
unknown is returned for every day read. Values that parse but are implausible (price ``<= 0``,
``NaN``) pass through unchanged: the contract check downstream reports them with their origin.

Derived trade ids
-----------------
A row without a trade id from its source (a canonical file without ``trade_id`` or with an empty
value; a ccxt export without an all-integer ``id`` column) gets::

    trade_id = ts_ms * 4096 + k

``ts_ms`` is the trade's epoch millisecond (``floor(ts / 1 ms)``) and ``k`` (0..4095) is the
0-based position of the trade among the id-less trades of the same token in the same millisecond,
ordered by (file path, zip member, line or row). Before numbering, exact duplicates are resolved:
two rows are identical when token, ts, side, price, amount and source trade id (none, for id-less
rows) are equal. Within one file (one zip member) the n-th identical row is a separate trade (the
same price and size filled twice) and is kept; the n-th occurrence of a row in one file and its
n-th occurrence in another file are the same trade (overlapping exports) and appear once, taken
from the file that comes first in path order. The ids are therefore time-ordered, unique per token
and deterministic: the same files give the same ids on every read, whichever days are read. More
than 4096 id-less trades of one token in one millisecond raise :class:`SourceError`.

Reading is fast-path first: Polars reads each CSV with every column as text and the values are
cast in bulk; only a file whose structure Polars cannot split into rows of the header's width goes
through a line-by-line reader that finds the bad lines. After the first read of a file, its time
span, per-token first trade and undated rejects are cached by (path, mtime, size), so reading day
after day only parses the files that can hold that day.
"""

from __future__ import annotations

import csv
import datetime as dt
import glob
import gzip
import io
import json
import os
import re
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

import polars as pl

from alevor_assets.lib.schemas import ORIGIN_COLUMN, UTC_US
from alevor_assets.lib.sources import REJECT_SCHEMA, TRADE_SCHEMA, SourceError, TradeBatch

__all__ = ["FORMATS", "FileTradeReader"]

FORMATS = ("auto", "canonical", "ccxt", "binance_aggtrades")

_REQUIRED: dict[str, tuple[str, ...]] = {
    "canonical": ("token", "ts", "price", "amount", "side"),
    "ccxt": ("symbol", "timestamp", "side", "price", "amount"),
    "binance_aggtrades": ("agg_trade_id", "price", "quantity", "transact_time", "is_buyer_maker"),
}
# Columns that only one format has: a file holding some of them but not all required columns is
# reported as that format with missing columns, not as an undetectable file.
_DISTINCTIVE: dict[str, frozenset[str]] = {
    "canonical": frozenset({"token", "ts"}),
    "ccxt": frozenset({"symbol", "timestamp"}),
    "binance_aggtrades": frozenset(
        {"agg_trade_id", "quantity", "first_trade_id", "last_trade_id", "transact_time",
         "is_buyer_maker", "is_best_match"}
    ),
}
_FORMAT_HELP = (
    "canonical (token, ts, price, amount, side[, trade_id]), "
    "ccxt (symbol, timestamp, datetime, side, price, amount), "
    "binance_aggtrades (agg_trade_id, price, quantity, first_trade_id, last_trade_id, "
    "transact_time, is_buyer_maker[, is_best_match]; header optional)"
)
_BINANCE_COLUMNS = (
    "agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time",
    "is_buyer_maker", "is_best_match",
)
_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".zip")

_US_PER_DAY = 86_400_000_000
# Instants a Python datetime can hold (years 1..9999); anything outside is not a valid time.
_MIN_US = -62_135_596_800_000_000
_MAX_US = 253_402_300_799_999_999
_MAX_K = 4095

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
# %#z takes Z, +hh, +hhmm and +hh:mm.
_ZONED = "%Y-%m-%dT%H:%M:%S%.f%#z"
_ZONED_FORMATS = (_ZONED, "%Y-%m-%dT%H:%M%#z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")

# Parsed files kept in memory per reader (rows, summed over files): reading consecutive days of
# one file that spans several days parses it once.
PARSED_CACHE_ROWS = 2_000_000


# --------------------------------------------------------------------------------------------
# Files and their parts


@dataclass(frozen=True)
class _Unit:
    """One table: a CSV file, a Parquet file or one CSV member of a zip."""

    path: Path
    member: str | None = None

    @property
    def origin(self) -> str:
        return f"{self.path}!{self.member}" if self.member else str(self.path)

    @property
    def name(self) -> str:
        return PurePosixPath(self.member).name if self.member else self.path.name

    @property
    def is_parquet(self) -> bool:
        return self.member is None and self.path.name.lower().endswith(".parquet")

    def open(self) -> IO[bytes]:
        lower = self.path.name.lower()
        if self.member is not None:
            # The member stays readable after the archive object is closed (shared file handle).
            with zipfile.ZipFile(self.path) as archive:
                return archive.open(self.member)
        if lower.endswith(".gz"):
            return gzip.open(self.path, "rb")
        return open(self.path, "rb")


def _units(path: Path) -> list[_Unit]:
    if not path.name.lower().endswith(".zip"):
        return [_Unit(path)]
    try:
        with zipfile.ZipFile(path) as archive:
            names = sorted(
                info.filename for info in archive.infolist()
                if not info.is_dir()
                and info.filename.lower().endswith(".csv")
                and not PurePosixPath(info.filename).name.startswith(".")
                and not info.filename.startswith("__MACOSX/")
            )
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"{path}: cannot open the zip file ({exc})") from exc
    if not names:
        raise SourceError(f"{path}: the zip file holds no CSV member")
    return [_Unit(path, name) for name in names]


# --------------------------------------------------------------------------------------------
# Format detection


def _split_line(text: str) -> list[str]:
    if '"' in text:
        return next(csv.reader([text]))
    return text.split(",")


def _is_headerless_binance(fields: list[str]) -> bool:
    if len(fields) not in (7, 8):
        return False
    return all(_NUMBER.match(f.strip()) or f.strip().lower() in ("true", "false") for f in fields)


def _resolve_format(origin: str, columns: list[str], fmt: str) -> str:
    present = set(columns)
    if fmt == "auto":
        complete = [f for f in _REQUIRED if set(_REQUIRED[f]) <= present]
        if complete:
            fmt = complete[0]
        else:
            partial = [f for f in _REQUIRED if _DISTINCTIVE[f] & present]
            if len(partial) != 1:
                shown = ", ".join(c for c in columns if not c.startswith("_unnamed_")) or "none"
                raise SourceError(
                    f"{origin}: the format could not be detected from the columns [{shown}]; "
                    f"formats: {_FORMAT_HELP}"
                )
            fmt = partial[0]
    missing = [c for c in _REQUIRED[fmt] if c not in present]
    if missing:
        raise SourceError(
            f"{origin}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(format {fmt}; the file has {', '.join(columns) or 'no columns'})"
        )
    return fmt


def _normalize_names(origin: str, names: list[str]) -> list[str]:
    out: list[str] = []
    for i, name in enumerate(names):
        clean = name.strip().lstrip("\ufeff").strip().lower()
        out.append(clean or f"_unnamed_{i}")
    dupes = sorted({n for n in out if out.count(n) > 1})
    if dupes:
        raise SourceError(f"{origin}: duplicate column{'s' if len(dupes) > 1 else ''} {', '.join(dupes)}")
    return out


# --------------------------------------------------------------------------------------------
# Reading a table as text (CSV) or typed columns (Parquet)


@dataclass
class _Table:
    df: pl.DataFrame  # source columns (normalized names) and "_line"
    fmt: str
    structural: list[tuple[int, str, str]]  # (line, rule, raw) of lines that did not split


def _count_lines(source: Path | bytes) -> int:
    """Physical lines (a last line without newline counts)."""
    if isinstance(source, bytes):
        return source.count(b"\n") + (1 if source and not source.endswith(b"\n") else 0)
    newlines, last = 0, b""
    with open(source, "rb") as fh:
        while chunk := fh.read(1 << 24):
            newlines += chunk.count(b"\n")
            last = chunk
    return newlines + (1 if last and not last.endswith(b"\n") else 0)


def _read_csv(unit: _Unit, fmt: str) -> _Table:
    with unit.open() as fh:
        first = fh.readline()
    try:
        first_text = first.decode("utf-8").lstrip("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError:
        first_text = first.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    if not first_text.strip():
        if len(first) == 0:  # an empty file holds no trades
            return _Table(pl.DataFrame({"_line": pl.Series([], dtype=pl.Int64)}), fmt, [])
        raise SourceError(f"{unit.origin}: line 1 is empty; expected a header line")
    fields = _split_line(first_text)
    header = not (fmt in ("auto", "binance_aggtrades") and _is_headerless_binance(fields))
    if header:
        names = _normalize_names(unit.origin, fields)
        fmt = _resolve_format(unit.origin, names, fmt)
    else:
        names, fmt = list(_BINANCE_COLUMNS[: len(fields)]), "binance_aggtrades"

    df = _fast_csv(unit, names, header)
    if df is not None:
        return _Table(df, fmt, [])
    df, structural = _slow_csv(unit, names, header)
    return _Table(df, fmt, structural)


def _fast_csv(unit: _Unit, names: list[str], header: bool) -> pl.DataFrame | None:
    """Polars reads every column as text; None when the structure needs the line-by-line path."""
    source: Path | bytes
    if unit.member is None and not unit.path.name.lower().endswith(".gz"):
        source = unit.path  # Polars maps the file
    else:
        with unit.open() as fh:
            source = fh.read()
    try:
        df = pl.read_csv(
            io.BytesIO(source) if isinstance(source, bytes) else source,
            has_header=header, new_columns=names, infer_schema=False,
        )
    except pl.exceptions.PolarsError:
        return None
    first_data_line = 2 if header else 1
    # Short lines come back padded with nulls, blank lines as all-null rows, quoted newlines as
    # fewer rows than lines: all of them go to the line-by-line path, which sees the real lines.
    if df.width != len(names) or df.get_column(names[-1]).null_count():
        return None
    if df.height != _count_lines(source) - (first_data_line - 1):
        return None
    return df.with_columns(pl.int_range(first_data_line, first_data_line + df.height, dtype=pl.Int64).alias("_line"))


def _slow_csv(unit: _Unit, names: list[str], header: bool) -> tuple[pl.DataFrame, list[tuple[int, str, str]]]:
    width = len(names)
    columns: list[list[str | None]] = [[] for _ in names]
    lines: list[int] = []
    structural: list[tuple[int, str, str]] = []
    with unit.open() as fh:
        for number, data in enumerate(fh, start=1):
            if number == 1 and header:
                continue
            data = data.rstrip(b"\r\n")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                structural.append((number, "line is not valid UTF-8", data.decode("utf-8", errors="replace")))
                continue
            if number == 1:
                text = text.lstrip("\ufeff")
            if not text.strip():
                continue  # a blank line is not a row
            fields = _split_line(text)
            if len(fields) != width:
                structural.append((number, f"line has {len(fields)} fields, expected {width}", text))
                continue
            for column, value in zip(columns, fields):
                column.append(value if value != "" else None)
            lines.append(number)
    df = pl.DataFrame(
        {**{n: pl.Series(n, c, dtype=pl.String) for n, c in zip(names, columns)},
         "_line": pl.Series("_line", lines, dtype=pl.Int64)}
    )
    return df, structural


def _read_parquet(unit: _Unit, fmt: str) -> _Table:
    try:
        df = pl.read_parquet(unit.path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SourceError(f"{unit.origin}: cannot read the Parquet file ({exc})") from exc
    names = _normalize_names(unit.origin, df.columns)
    fmt = _resolve_format(unit.origin, names, fmt)
    df = df.rename(dict(zip(df.columns, names)))
    return _Table(df.with_columns(pl.int_range(0, df.height, dtype=pl.Int64).alias("_line")), fmt, [])


# --------------------------------------------------------------------------------------------
# Conversion. Each converter takes a source column and returns the value (null where unusable)
# and, per row, the rule the row breaks (null when fine). They cast the whole column first and
# look again, more slowly, only at the rows that did not convert, so clean files pay one cast.


def _is_text(dtype: pl.DataType) -> bool:
    return dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum))


def _apply(series: pl.Series, expr: pl.Expr) -> pl.Series:
    """``expr`` over ``series`` (named ``v`` inside the expression)."""
    return series.rename("v").to_frame().select(expr).to_series()


_V = pl.col("v")


def _nulls(n: int, dtype: pl.DataType = pl.String) -> pl.Series:
    return pl.repeat(None, n, dtype=dtype, eager=True)


def _rules(n: int, rows: pl.Series, texts: pl.Series | str) -> pl.Series:
    """A rule column: ``texts`` at ``rows``, null elsewhere."""
    rule = _nulls(n)
    if rows.len():
        values = texts if isinstance(texts, pl.Series) else pl.repeat(texts, rows.len(), eager=True)
        rule = rule.scatter(rows, values.cast(pl.String))
    return rule


def _retry(series: pl.Series, fast: pl.Expr, slow: pl.Expr) -> pl.Series:
    """``fast`` on every row, then ``slow`` on the non-null rows ``fast`` left null."""
    value = _apply(series, fast)
    redo = (value.is_null() & series.is_not_null()).arg_true()
    if redo.len():
        value = value.scatter(redo, _apply(series.gather(redo), slow))
    return value


def _bad(label: str, series: pl.Series, value: pl.Series, invalid: str) -> pl.Series:
    """``<label> is missing`` for null or blank text, ``invalid`` for other rows without value."""
    rows = value.is_null().arg_true()
    if not rows.len():
        return _nulls(series.len())
    original = series.gather(rows)
    blank = original.is_null()
    if _is_text(series.dtype):
        blank = blank | (original.cast(pl.String).str.strip_chars() == "")
    texts = _apply(blank, pl.when(_V).then(pl.lit(f"{label} is missing")).otherwise(pl.lit(invalid)))
    return _rules(series.len(), rows, texts)


def _float(origin: str, col: str, label: str, series: pl.Series) -> tuple[pl.Series, pl.Series]:
    if _is_text(series.dtype):
        s = series.cast(pl.String)
        value = _retry(s, _V.cast(pl.Float64, strict=False), _V.str.strip_chars().cast(pl.Float64, strict=False))
        return value, _bad(label, s, value, f"{label} is not a number")
    if series.dtype.is_numeric():
        value = series.cast(pl.Float64)
        return value, _bad(label, series, value, f"{label} is missing")
    raise SourceError(f"{origin}: column {col} has type {series.dtype}; expected numbers")


def _token(series: pl.Series) -> tuple[pl.Series, pl.Series]:
    value = _apply(series.cast(pl.String), _V.str.strip_chars())
    value = _apply(value, pl.when(_V != "").then(_V))
    return value, _bad("token", value, value, "token is missing")


def _side(origin: str, col: str, series: pl.Series) -> tuple[pl.Series, pl.Series]:
    if not _is_text(series.dtype):
        raise SourceError(f"{origin}: column {col} has type {series.dtype}; expected text buy or sell")
    s = series.cast(pl.String)
    normal = _V.str.strip_chars().str.to_lowercase()
    value = _retry(s, pl.when(_V.is_in(["buy", "sell"])).then(_V),
                   pl.when(normal.is_in(["buy", "sell"])).then(normal))
    return value, _bad("side", s, value, "side must be buy or sell")


def _buyer_maker_side(origin: str, col: str, series: pl.Series) -> tuple[pl.Series, pl.Series]:
    """``sell`` when the buyer was the maker (the taker sold), else ``buy``."""
    if series.dtype == pl.Boolean:
        value = _apply(series, pl.when(_V).then(pl.lit("sell")).when(~_V).then(pl.lit("buy")))
        return value, _bad("is_buyer_maker", series, value, "is_buyer_maker is missing")
    if not _is_text(series.dtype):
        raise SourceError(f"{origin}: column {col} has type {series.dtype}; expected true or false")
    s = series.cast(pl.String)
    normal = _V.str.strip_chars().str.to_lowercase()
    value = _retry(
        s,
        pl.when(_V == "true").then(pl.lit("sell")).when(_V == "false").then(pl.lit("buy")),
        pl.when(normal == "true").then(pl.lit("sell")).when(normal == "false").then(pl.lit("buy")),
    )
    return value, _bad("is_buyer_maker", s, value, "is_buyer_maker must be true or false")


def _trade_id(origin: str, col: str, series: pl.Series, required: bool) -> tuple[pl.Series, pl.Series]:
    """Integer ids; an absent id breaks a rule when ``required``, else stays null (derived later)."""
    dtype = series.dtype
    if _is_text(dtype):
        s = series.cast(pl.String)
        value = _retry(s, _V.cast(pl.Int64, strict=False), _V.str.strip_chars().cast(pl.Int64, strict=False))
    elif dtype.is_integer():
        s, value = series, series.cast(pl.Int64, strict=False)
    elif dtype.is_float():
        s = series
        value = _apply(series, pl.when(_V == _V.floor()).then(_V.cast(pl.Int64, strict=False)))
    else:
        raise SourceError(f"{origin}: column {col} has type {dtype}; expected integers")
    rule = _bad("trade_id", s, value, "trade_id is not an integer")
    if not required:
        rule = _apply(rule, pl.when(_V != "trade_id is missing").then(_V))
    return value, rule


def _epoch_int_us(v: pl.Expr) -> pl.Expr:
    a = v.abs()
    return pl.when(a >= 10**14).then(v).when(a >= 10**11).then(v * 1_000).otherwise(v * 1_000_000)


def _epoch_float_us(v: pl.Expr) -> pl.Expr:
    a = v.abs()
    scaled = pl.when(a >= 1e14).then(v).when(a >= 1e11).then(v * 1e3).otherwise(v * 1e6)
    return pl.when(scaled.abs() < 9e18).then(scaled.round().cast(pl.Int64, strict=False))


def _in_range(us: pl.Series) -> pl.Series:
    return us.to_frame("us").select(
        pl.when(pl.col("us").is_between(_MIN_US, _MAX_US)).then(pl.col("us"))
    ).to_series()


def _timestamp(origin: str, col: str, series: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Epoch microseconds (Int64, null when unusable) and, per row, the rule it breaks.

    Text is tried in stages, each on the rows the previous one left: integer epoch, decimal epoch,
    ISO-8601 with a zone, and only then the naive forms (to tell "no time zone" from garbage).
    """
    dtype = series.dtype
    v = pl.col("v")
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            raise SourceError(
                f"{origin}: column {col} is a timestamp without time zone; "
                "store it as a time zone-aware timestamp (e.g. UTC)"
            )
        us = _in_range(_apply(series, v.dt.convert_time_zone("UTC").dt.epoch("us")))
    elif dtype.is_integer():
        us = _in_range(_apply(series, _epoch_int_us(v.cast(pl.Int64, strict=False))))
    elif dtype.is_float():
        us = _in_range(_apply(series, _epoch_float_us(v.cast(pl.Float64))))
    elif _is_text(dtype):
        return _timestamp_text(series.cast(pl.String).str.strip_chars())
    else:
        raise SourceError(
            f"{origin}: column {col} has type {dtype}; expected a time zone-aware timestamp, "
            "an epoch number or ISO-8601 text with a zone"
        )
    rule = pl.DataFrame({"missing": series.is_null(), "bad": us.is_null()}).select(
        pl.when(pl.col("missing")).then(pl.lit("timestamp is missing"))
        .when(pl.col("bad")).then(pl.lit("timestamp is not a valid time"))
    ).to_series()
    return us, rule


def _timestamp_text(s: pl.Series) -> tuple[pl.Series, pl.Series]:
    v = pl.col("v")
    us = _in_range(_apply(s, _epoch_int_us(v.cast(pl.Int64, strict=False))))
    missing = s.is_null() | (s == "")
    is_naive = pl.repeat(False, s.len(), dtype=pl.Boolean, eager=True)
    rest = (us.is_null() & ~missing).arg_true()  # rows that are not integer epochs
    if rest.len():
        sub = s.gather(rest)
        decimal = v.str.contains(r"^[+-]?(\d+\.\d*|\.\d+)$")
        found = _in_range(_apply(sub, pl.coalesce(
            pl.when(decimal).then(_epoch_float_us(v.cast(pl.Float64, strict=False))),
            v.str.to_datetime(_ZONED, time_unit="us", time_zone="UTC", strict=False).dt.epoch("us"),
        )))
        left = found.is_null().arg_true()
        if left.len():  # rarer spellings: no seconds, a space or a lower-case t before the time
            iso = _apply(sub.gather(left), v.str.replace(r"^(\d{4}-\d{2}-\d{2})[ tT]", "${1}T"))
            again = _in_range(_apply(iso, pl.coalesce(
                [v.str.to_datetime(f, time_unit="us", time_zone="UTC", strict=False) for f in _ZONED_FORMATS]
            ).dt.epoch("us")))
            found = found.scatter(left, again)
            if again.null_count():  # tell a time without zone from text that is no time at all
                naive = again.is_null() & _apply(iso, pl.coalesce(
                    [v.str.to_datetime(f, time_unit="us", strict=False) for f in _NAIVE_FORMATS]
                ).is_not_null())
                if naive.any():
                    is_naive = is_naive.scatter(rest.gather(left.filter(naive)), True)
        us = us.scatter(rest, found)
    rule = pl.DataFrame({"missing": missing, "naive": is_naive, "bad": us.is_null()}).select(
        pl.when(pl.col("missing")).then(pl.lit("timestamp is missing"))
        .when(pl.col("naive")).then(pl.lit("timestamp has no time zone"))
        .when(pl.col("bad")).then(pl.lit("timestamp is not a valid time"))
    ).to_series()
    return us, rule


def _token_from_name(name: str) -> str:
    lower = name.lower()
    for suffix in (".csv.gz", ".csv", ".zip", ".parquet"):
        if lower.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.split("-", 1)[0]


def _ccxt_ids(origin: str, df: pl.DataFrame) -> pl.Series:
    """The ``id`` column when every value in the file is an integer; else nulls (ids are derived)."""
    if "id" in df.columns and df.height:
        value, rule = _trade_id(origin, "id", df.get_column("id"), required=True)
        if rule.null_count() == df.height:
            return value
    return _nulls(df.height, pl.Int64)


@dataclass
class _Converted:
    trades: pl.DataFrame  # token, trade_id, ts (Int64 us), price, amount, side, _line
    dated: pl.DataFrame  # ts, _line, rule, raw
    undated: pl.DataFrame  # _line, rule, raw


_CONVERTED_SCHEMA = {
    "token": pl.String, "trade_id": pl.Int64, "ts": pl.Int64, "price": pl.Float64,
    "amount": pl.Float64, "side": pl.String, "_line": pl.Int64,
}


def _convert(unit: _Unit, table: _Table) -> _Converted:
    df, origin = table.df, unit.origin
    n = df.height
    if table.fmt not in _REQUIRED:  # an empty file: no header, so no format, and no rows
        return _Converted(
            pl.DataFrame(schema=_CONVERTED_SCHEMA),
            pl.DataFrame(schema={"ts": pl.Int64, "_line": pl.Int64, "rule": pl.String, "raw": pl.String}),
            pl.DataFrame(schema={"_line": pl.Int64, "rule": pl.String, "raw": pl.String}),
        )
    col = df.get_column
    if table.fmt == "canonical":
        token, token_rule = _token(col("token"))
        ts, ts_rule = _timestamp(origin, "ts", col("ts"))
        price, price_rule = _float(origin, "price", "price", col("price"))
        amount, amount_rule = _float(origin, "amount", "amount", col("amount"))
        side, side_rule = _side(origin, "side", col("side"))
        if "trade_id" in df.columns:
            tid, tid_rule = _trade_id(origin, "trade_id", col("trade_id"), required=False)
        else:
            tid, tid_rule = _nulls(n, pl.Int64), _nulls(n)
    elif table.fmt == "ccxt":
        token, token_rule = _token(col("symbol"))
        ts, ts_rule = _timestamp(origin, "timestamp", col("timestamp"))
        price, price_rule = _float(origin, "price", "price", col("price"))
        amount, amount_rule = _float(origin, "amount", "amount", col("amount"))
        side, side_rule = _side(origin, "side", col("side"))
        tid, tid_rule = _ccxt_ids(origin, df), _nulls(n)
    else:
        token = pl.repeat(_token_from_name(unit.name), n, dtype=pl.String, eager=True)
        token_rule = _nulls(n)
        ts, ts_rule = _timestamp(origin, "transact_time", col("transact_time"))
        price, price_rule = _float(origin, "price", "price", col("price"))
        amount, amount_rule = _float(origin, "quantity", "amount", col("quantity"))
        side, side_rule = _buyer_maker_side(origin, "is_buyer_maker", col("is_buyer_maker"))
        tid, tid_rule = _trade_id(origin, "agg_trade_id", col("agg_trade_id"), required=True)

    out = pl.DataFrame(
        [token.alias("token"), tid.cast(pl.Int64).alias("trade_id"), ts.cast(pl.Int64).alias("ts"),
         price.alias("price"), amount.alias("amount"), side.cast(pl.String).alias("side"), col("_line")]
    )
    rules = pl.DataFrame([r.alias(f"r{i}") for i, r in enumerate(
        [token_rule, ts_rule, price_rule, amount_rule, side_rule, tid_rule])])
    broken = rules.select(pl.any_horizontal(pl.all().is_not_null())).to_series()
    trades = out.filter(~broken)
    bad = out.select("ts", "_line").filter(broken).with_columns(
        rules.filter(broken).select(pl.concat_str(pl.all(), separator="; ", ignore_nulls=True).alias("rule"))
    )
    lines = bad.get_column("_line").to_list()
    raw = _raw_texts(unit, table, lines)
    bad = bad.with_columns(pl.Series("raw", [raw.get(line, "") for line in lines], dtype=pl.String))
    structural = pl.DataFrame(
        {"_line": [s[0] for s in table.structural], "rule": [s[1] for s in table.structural],
         "raw": [s[2] for s in table.structural]},
        schema={"_line": pl.Int64, "rule": pl.String, "raw": pl.String},
    )
    dated = bad.filter(pl.col("ts").is_not_null())
    undated = pl.concat([bad.filter(pl.col("ts").is_null()).drop("ts"), structural]).sort("_line")
    return _Converted(trades, dated, undated)


def _raw_texts(unit: _Unit, table: _Table, lines: list[int]) -> dict[int, str]:
    """The text of rejected rows: the line for CSV, the row as JSON for Parquet."""
    if not lines:
        return {}
    if unit.is_parquet:
        wanted = table.df.filter(pl.col("_line").is_in(lines))
        return {
            row.pop("_line"): json.dumps(row, default=str, ensure_ascii=False)
            for row in wanted.to_dicts()
        }
    wanted_set, last, found = set(lines), max(lines), {}
    with unit.open() as fh:
        for number, data in enumerate(fh, start=1):
            if number in wanted_set:
                text = data.rstrip(b"\r\n").decode("utf-8", errors="replace")
                found[number] = text.lstrip("\ufeff") if number == 1 else text
            if number >= last:
                break
    return found


# --------------------------------------------------------------------------------------------
# One file: parse, and the metadata cached across reads


@dataclass
class _Parsed:
    trades: pl.DataFrame  # token, trade_id, ts, price, amount, side, _unit, _line
    dated: pl.DataFrame  # ts, _unit, _line, _origin, rule, raw
    undated: pl.DataFrame  # _unit, _line, _origin, rule, raw
    prefixes: list[str]  # per _unit: origin prefix including the separator before the line

    @property
    def rows(self) -> int:
        return self.trades.height + self.dated.height + self.undated.height


@dataclass(frozen=True)
class _Meta:
    min_ts: int | None  # over trades and rejects whose time is known
    max_ts: int | None
    token_first: dict[str, int]  # token -> earliest trade ts (epoch us)
    undated: pl.DataFrame  # _unit, _line, _origin, rule, raw

    def may_hold(self, start: int, end: int) -> bool:
        return self.min_ts is not None and self.max_ts is not None and self.min_ts < end and self.max_ts >= start


def _with_origin(df: pl.DataFrame, prefixes: list[str]) -> pl.DataFrame:
    prefix = (
        pl.lit(prefixes[0]) if len(prefixes) == 1
        else pl.col("_unit").replace_strict(list(range(len(prefixes))), prefixes, return_dtype=pl.String)
    )
    return df.with_columns(pl.concat_str([prefix, pl.col("_line").cast(pl.String)]).alias(ORIGIN_COLUMN))


def _parse_file(path: Path, fmt: str) -> _Parsed:
    units = _units(path)
    trades, dated, undated, prefixes = [], [], [], []
    for index, unit in enumerate(units):
        table = _read_parquet(unit, fmt) if unit.is_parquet else _read_csv(unit, fmt)
        converted = _convert(unit, table)
        tag = pl.lit(index, pl.Int32).alias("_unit")
        trades.append(converted.trades.with_columns(tag))
        dated.append(converted.dated.with_columns(tag))
        undated.append(converted.undated.with_columns(tag))
        prefixes.append(unit.origin + (":row " if unit.is_parquet else ":"))
    dated_df = _with_origin(pl.concat(dated), prefixes).select("ts", "_unit", "_line", ORIGIN_COLUMN, "rule", "raw")
    undated_df = _with_origin(pl.concat(undated), prefixes).select("_unit", "_line", ORIGIN_COLUMN, "rule", "raw")
    return _Parsed(pl.concat(trades), dated_df, undated_df, prefixes)


def _meta_of(parsed: _Parsed) -> _Meta:
    spans = pl.concat([parsed.trades.select("ts"), parsed.dated.select("ts")])
    first = parsed.trades.group_by("token").agg(pl.col("ts").min())
    return _Meta(
        min_ts=spans.get_column("ts").min(),  # type: ignore[arg-type]
        max_ts=spans.get_column("ts").max(),  # type: ignore[arg-type]
        token_first=dict(zip(first.get_column("token").to_list(), first.get_column("ts").to_list())),
        undated=parsed.undated,
    )


# (absolute path, format) -> ((mtime_ns, size), metadata), shared by every reader in the process.
_META_CACHE: dict[tuple[str, str], tuple[tuple[int, int], _Meta]] = {}
_META_LOCK = threading.Lock()


def _day_bounds(day: dt.date) -> tuple[int, int]:
    start = (day - dt.date(1970, 1, 1)).days * _US_PER_DAY
    return start, start + _US_PER_DAY


# --------------------------------------------------------------------------------------------
# The reader


class FileTradeReader:
    """Trades from every file matching ``pattern`` (see the module docstring for the formats)."""

    def __init__(self, pattern: str, fmt: str = "auto"):
        if fmt not in FORMATS:
            raise ValueError(f"unknown file format {fmt!r}; expected one of {', '.join(FORMATS)}")
        self.pattern = pattern
        self.fmt = fmt
        self._parsed: OrderedDict[tuple[str, int, int], _Parsed] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileTradeReader({self.pattern!r}, fmt={self.fmt!r})"

    # files ---------------------------------------------------------------------------------

    def files(self) -> list[Path]:
        """Files matching the glob (``**`` recurses) that are CSV, CSV.gz, Parquet or zip, by path."""
        matches = glob.glob(os.path.expanduser(self.pattern), recursive=True)
        paths = [Path(m) for m in matches if m.lower().endswith(_SUFFIXES) and os.path.isfile(m)]
        return sorted(paths, key=str)

    def fingerprint(self) -> dict[str, tuple[int, int]]:
        """``path -> (mtime_ns, size)`` of every matching file; changes when a file is added or changed."""
        out: dict[str, tuple[int, int]] = {}
        for path in self.files():
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # removed between the glob and the stat
            out[str(path)] = (st.st_mtime_ns, st.st_size)
        return out

    # reading -------------------------------------------------------------------------------

    def _matching(self) -> list[Path]:
        files = self.files()
        if not files:
            raise SourceError(f"no files match {self.pattern}")
        return files

    def file_days(self, path: str | Path) -> list[dt.date]:
        """The UTC days a file holds trades for (parses it once; cached by mtime and size)."""
        meta, _ = self._load(Path(path), need_rows=False)
        if meta.min_ts is None or meta.max_ts is None:
            return []
        first = dt.datetime.fromtimestamp(meta.min_ts / 1e6, tz=dt.timezone.utc).date()
        last = dt.datetime.fromtimestamp(meta.max_ts / 1e6, tz=dt.timezone.utc).date()
        return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]

    def _load(self, path: Path, need_rows: bool) -> tuple[_Meta, _Parsed | None]:
        """The file's metadata, and its parsed rows when asked for or when it had to parse them."""
        try:
            st = path.stat()
        except FileNotFoundError as exc:
            raise SourceError(f"{path}: the file disappeared while the source was read") from exc
        signature = (st.st_mtime_ns, st.st_size)
        meta_key = (os.path.abspath(path), self.fmt)
        with _META_LOCK:
            cached = _META_CACHE.get(meta_key)
        if cached is not None and cached[0] == signature and not need_rows:
            return cached[1], None
        parsed_key = (meta_key[0], *signature)
        with self._lock:
            parsed = self._parsed.get(parsed_key)
            if parsed is not None:
                self._parsed.move_to_end(parsed_key)
        if parsed is None:
            parsed = _parse_file(path, self.fmt)
            self._remember(parsed_key, parsed)
        if cached is not None and cached[0] == signature:
            return cached[1], parsed
        meta = _meta_of(parsed)
        with _META_LOCK:
            _META_CACHE[meta_key] = (signature, meta)
        return meta, parsed

    def _remember(self, key: tuple[str, int, int], parsed: _Parsed) -> None:
        if parsed.rows > PARSED_CACHE_ROWS:
            return
        with self._lock:
            self._parsed[key] = parsed
            total = sum(p.rows for p in self._parsed.values())
            while total > PARSED_CACHE_ROWS and self._parsed:
                _, old = self._parsed.popitem(last=False)
                total -= old.rows

    def read_day(self, day: dt.date) -> TradeBatch:
        """All trades with ``ts`` in ``[day 00:00 UTC, next day 00:00 UTC)`` across all files."""
        start, end = _day_bounds(day)
        trades: list[pl.DataFrame] = []
        rejects: list[pl.DataFrame] = []
        for rank, path in enumerate(self._matching()):
            meta, parsed = self._load(path, need_rows=False)
            src = pl.lit(rank, pl.Int32).alias("_src")
            if meta.undated.height:
                rejects.append(meta.undated.with_columns(src))
            if not meta.may_hold(start, end):
                continue
            if parsed is None:
                _, parsed = self._load(path, need_rows=True)
                assert parsed is not None
            in_day = pl.col("ts").is_between(start, end, closed="left")
            day_trades = parsed.trades.filter(in_day)
            if day_trades.height:
                trades.append(_with_origin(day_trades, parsed.prefixes).with_columns(src))
            if parsed.dated.height:
                rejects.append(parsed.dated.filter(in_day).drop("ts").with_columns(src))
        return TradeBatch(_finish_trades(trades), _finish_rejects(rejects))

    def tokens(self, day: dt.date) -> pl.DataFrame:
        """One row per token with trades on or before ``day``; ``created_at`` is its first trade."""
        _, end = _day_bounds(day)
        first: dict[str, int] = {}
        for path in self._matching():
            meta, _ = self._load(path, need_rows=False)
            for token, ts in meta.token_first.items():
                if token not in first or ts < first[token]:
                    first[token] = ts
        rows = sorted((t, ts) for t, ts in first.items() if ts < end)
        return pl.DataFrame(
            {
                "token": [t for t, _ in rows],
                "symbol": [t for t, _ in rows],
                "name": [None] * len(rows),
                "address": [None] * len(rows),
                "created_at": [ts for _, ts in rows],
            },
            schema={"token": pl.String, "symbol": pl.String, "name": pl.String, "address": pl.String,
                    "created_at": pl.Int64},
        ).with_columns(pl.col("created_at").cast(UTC_US))


def _finish_trades(parts: list[pl.DataFrame]) -> pl.DataFrame:
    if not parts:
        return pl.DataFrame(schema=TRADE_SCHEMA)
    df = pl.concat(parts).sort("_src", "_unit", "_line").with_row_index("_order")
    if _files_overlap(df):
        # The n-th identical row of one file is the same trade as the n-th of another file.
        key = ["token", "ts", "side", "price", "amount", "trade_id"]
        df = _number_runs(df, [*key, "_src", "_unit"], "_occ")
        df = df.unique(subset=[*key, "_occ"], keep="first").drop("_occ")
    if df.get_column("trade_id").null_count():
        df = _derive_ids(df)
    return (
        df.sort("token", "ts", "trade_id", "_order")
        .select(
            pl.col("token"),
            pl.col("trade_id"),
            pl.col("ts").cast(UTC_US),
            pl.col("price"),
            pl.col("amount"),
            pl.col("side"),
            pl.col(ORIGIN_COLUMN),
        )
    )


def _files_overlap(df: pl.DataFrame) -> bool:
    """Whether two files (zip members) hold trades of one token in overlapping time spans."""
    spans = (
        df.group_by("token", "_src", "_unit")
        .agg(pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi"))
        .sort("token", "lo", "hi")
    )
    if spans.height == spans.get_column("token").n_unique():
        return False
    return spans.select(
        (pl.col("lo") <= pl.col("hi").cum_max().shift(1).over("token")).fill_null(False).any()
    ).item()


def _number_runs(df: pl.DataFrame, key: list[str], name: str) -> pl.DataFrame:
    """``name`` = 0-based position of each row among the rows with the same ``key``, in
    ``_order`` order (a sort and a scan; faster than a window over a hash of the key)."""
    run = pl.struct(key).rle_id()
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    return (
        df.sort([*key, "_order"])
        .with_columns(run.alias("_run"))
        .with_columns(
            (index - pl.when(pl.col("_run") != pl.col("_run").shift(1).fill_null(-1)).then(index)
             .forward_fill()).alias(name)
        )
        .drop("_run")
    )


def _derive_ids(df: pl.DataFrame) -> pl.DataFrame:
    """``ts_ms * 4096 + k`` for the rows without a source id (see the module docstring)."""
    missing = _number_runs(
        df.filter(pl.col("trade_id").is_null()).with_columns((pl.col("ts") // 1000).alias("_ms")),
        ["token", "_ms"], "_k",
    )
    worst = missing.filter(pl.col("_k") > _MAX_K)
    if worst.height:
        row = worst.row(0, named=True)
        when = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=row["_ms"])
        raise SourceError(
            f"token {row['token']} has more than {_MAX_K + 1} trades without trade id in the "
            f"millisecond {when.isoformat()} (e.g. {row[ORIGIN_COLUMN]}); cannot derive trade ids"
        )
    derived = missing.with_columns((pl.col("_ms") * 4096 + pl.col("_k")).alias("trade_id")).drop("_ms", "_k")
    return pl.concat([df.filter(pl.col("trade_id").is_not_null()), derived])


def _finish_rejects(parts: list[pl.DataFrame]) -> pl.DataFrame:
    parts = [p for p in parts if p.height]
    if not parts:
        return pl.DataFrame(schema=REJECT_SCHEMA)
    return pl.concat(parts).sort("_src", "_unit", "_line").select(
        pl.col(name).cast(dtype) for name, dtype in REJECT_SCHEMA.items()
    )

