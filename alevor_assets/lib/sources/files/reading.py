"""The reader: one file parsed into trades and rejects, the per-file metadata cached across reads,
and ``FileTradeReader``, which reads a day from every matching file.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from alevor_assets.lib.schemas import ORIGIN_COLUMN, UTC_US
from alevor_assets.lib.sources import SourceError, TradeBatch
from alevor_assets.lib.sources.files.conversion import _convert
from alevor_assets.lib.sources.files.dedupe import _finish_rejects, _finish_trades
from alevor_assets.lib.sources.files.formats import _SUFFIXES, FORMATS, _units
from alevor_assets.lib.sources.files.parsing import _read_csv, _read_parquet

_US_PER_DAY = 86_400_000_000

# Parsed files kept in memory per reader (rows, summed over files): reading consecutive days of
# one file that spans several days parses it once.
PARSED_CACHE_ROWS = 2_000_000


@dataclass
class _Parsed:
    trades: pl.DataFrame  # token, trade_id, ts, price, amount, side, _unit, _line
    dated: pl.DataFrame  # ts, _unit, _line, _origin, rule, raw
    undated: pl.DataFrame  # _unit, _line, _origin, rule, raw
    prefixes: list[str]  # per _unit: origin prefix including the separator before the line
    empty: list[str]  # "<origin>: <why>" of units without any row

    @property
    def rows(self) -> int:
        return self.trades.height + self.dated.height + self.undated.height


@dataclass(frozen=True)
class _Meta:
    min_ts: int | None  # over trades and rejects whose time is known
    max_ts: int | None
    token_first: dict[str, int]  # token -> earliest trade ts (epoch us)
    undated: pl.DataFrame  # _unit, _line, _origin, rule, raw
    empty: list[str]

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
    trades, dated, undated, prefixes, empty = [], [], [], [], []
    for index, unit in enumerate(units):
        table = _read_parquet(unit, fmt) if unit.is_parquet else _read_csv(unit, fmt)
        if table.empty:
            empty.append(f"{unit.origin}: {table.empty}")
        converted = _convert(unit, table)
        tag = pl.lit(index, pl.Int32).alias("_unit")
        trades.append(converted.trades.with_columns(tag))
        dated.append(converted.dated.with_columns(tag))
        undated.append(converted.undated.with_columns(tag))
        prefixes.append(unit.origin + (":row " if unit.is_parquet else ":"))
    dated_df = _with_origin(pl.concat(dated), prefixes).select("ts", "_unit", "_line", ORIGIN_COLUMN, "rule", "raw")
    undated_df = _with_origin(pl.concat(undated), prefixes).select("_unit", "_line", ORIGIN_COLUMN, "rule", "raw")
    return _Parsed(pl.concat(trades), dated_df, undated_df, prefixes, empty)


def _meta_of(parsed: _Parsed) -> _Meta:
    spans = pl.concat([parsed.trades.select("ts"), parsed.dated.select("ts")])
    first = parsed.trades.group_by("token").agg(pl.col("ts").min())
    return _Meta(
        min_ts=spans.get_column("ts").min(),  # type: ignore[arg-type]
        max_ts=spans.get_column("ts").max(),  # type: ignore[arg-type]
        token_first=dict(zip(first.get_column("token").to_list(), first.get_column("ts").to_list())),
        undated=parsed.undated,
        empty=parsed.empty,
    )


# (absolute path, format) -> ((mtime_ns, size), metadata), shared by every reader in the process.
_META_CACHE: dict[tuple[str, str], tuple[tuple[int, int], _Meta]] = {}
_META_LOCK = threading.Lock()


def _day_bounds(day: dt.date) -> tuple[int, int]:
    start = (day - dt.date(1970, 1, 1)).days * _US_PER_DAY
    return start, start + _US_PER_DAY


class FileTradeReader:
    """Trades from every file matching ``pattern`` (see the package docstring for the formats)."""

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
        empty: list[str] = []
        for rank, path in enumerate(self._matching()):
            meta, parsed = self._load(path, need_rows=False)
            empty += meta.empty
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
        return TradeBatch(_finish_trades(trades), _finish_rejects(rejects), tuple(empty))

    def tokens(self, day: dt.date) -> pl.DataFrame:
        """One row per token with trades on or before ``day``. Trade files say nothing about when
        a token was created, so ``created_at`` is null: a token's first trade in an export is only
        where the export starts (in pump-event exports, always about two days before each pump), and
        an age guessed from it would teach a model the export window, not the market."""
        _, end = _day_bounds(day)
        first: dict[str, int] = {}
        for path in self._matching():
            meta, _ = self._load(path, need_rows=False)
            for token, ts in meta.token_first.items():
                if token not in first or ts < first[token]:
                    first[token] = ts
        names = sorted(t for t, ts in first.items() if ts < end)
        return pl.DataFrame(
            {"token": names, "symbol": names, "name": [None] * len(names), "address": [None] * len(names),
             "created_at": [None] * len(names)},
            schema={"token": pl.String, "symbol": pl.String, "name": pl.String, "address": pl.String, "created_at": UTC_US},
        )
