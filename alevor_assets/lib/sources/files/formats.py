"""Which files are read and how their format is told: the suffixes a glob takes, the tables in a
file (a zip holds one per CSV member), each format's columns, and detection from the header.
"""

from __future__ import annotations

import csv
import gzip
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from alevor_assets.lib.sources import SourceError

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

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


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


def _shown(data: bytes | str, limit: int = 200) -> str:
    """A source line as rejected rows keep it: ASCII only (anything else escaped as ``\\xNN``,
    ``\\uNNNN``), control characters escaped, at most ``limit`` characters (messages quote
    fewer, see ``lib/contract.py``)."""
    text = data.decode("utf-8", errors="backslashreplace") if isinstance(data, bytes) else data
    text = "".join(c if c.isprintable() and c.isascii() else c.encode("unicode_escape").decode("ascii") for c in text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


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
