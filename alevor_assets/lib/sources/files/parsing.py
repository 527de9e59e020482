"""Reading a table as text (CSV) or typed columns (Parquet).

Polars reads each CSV with every column as text; only a file whose structure Polars cannot split
into rows of the header's width goes through a line-by-line reader that finds the bad lines.
"""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from alevor_assets.lib.sources import SourceError
from alevor_assets.lib.sources.files.formats import (
    _BINANCE_COLUMNS,
    _is_headerless_binance,
    _normalize_names,
    _resolve_format,
    _shown,
    _split_line,
    _Unit,
)


@dataclass
class _Table:
    df: pl.DataFrame  # source columns (normalized names) and "_line"
    fmt: str
    structural: list[tuple[int, str, str]]  # (line, rule, raw) of lines that did not split
    empty: str | None = None  # why the table holds no rows at all (0 bytes, a header only)


# What a truncated or corrupt compressed stream raises while it is read.
_STREAM_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, zipfile.BadZipFile)


def _lines_before_error(unit: _Unit) -> int:
    """How many whole lines a broken compressed stream yields before it fails."""
    count = 0
    try:
        with unit.open() as fh:
            for _ in fh:
                count += 1
    except (*_STREAM_ERRORS, OSError):
        pass
    return max(count - 1, 0)  # the last line read may be cut short by the break


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
    """The unit as a table of text columns; a truncated or corrupt compressed stream is an error
    that names the file and the last whole line."""
    try:
        return _read_csv_text(unit, fmt)
    except _STREAM_ERRORS as exc:
        lines = _lines_before_error(unit)
        where = f"after line {lines}" if lines else "before its first line"
        raise SourceError(
            f"{unit.origin}: the compressed data is truncated or corrupt {where} ({type(exc).__name__}: "
            f"{exc}); download or export the file again"
        ) from None


def _read_csv_text(unit: _Unit, fmt: str) -> _Table:
    with unit.open() as fh:
        first = fh.readline()
    try:
        first_text = first.decode("utf-8").lstrip("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError:
        first_text = first.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    if not first_text.strip():
        if len(first) == 0:  # no header, so no format, and no rows
            return _Table(pl.DataFrame({"_line": pl.Series([], dtype=pl.Int64)}), fmt, [], empty="the file is empty (0 bytes)")
        raise SourceError(f"{unit.origin}: line 1 is empty; expected a header line")
    fields = _split_line(first_text)
    header = not (fmt in ("auto", "binance_aggtrades") and _is_headerless_binance(fields))
    if header:
        names = _normalize_names(unit.origin, fields)
        fmt = _resolve_format(unit.origin, names, fmt)
    else:
        names, fmt = list(_BINANCE_COLUMNS[: len(fields)]), "binance_aggtrades"

    df = _fast_csv(unit, names, header)
    structural: list[tuple[int, str, str]] = []
    if df is None:
        df, structural = _slow_csv(unit, names, header)
    empty = "the file has a header line and no rows" if df.height == 0 and not structural else None
    return _Table(df, fmt, structural, empty)


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
                structural.append((number, "line is not valid UTF-8", _shown(data)))
                continue
            if number == 1:
                text = text.lstrip("\ufeff")
            if not text.strip():
                continue  # a blank line is not a row
            fields = _split_line(text)
            if len(fields) != width:
                structural.append((number, f"line has {len(fields)} fields, expected {width}", _shown(text)))
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
    empty = "the Parquet file has no rows" if df.height == 0 else None
    return _Table(df.with_columns(pl.int_range(0, df.height, dtype=pl.Int64).alias("_line")), fmt, [], empty)
