"""Trade sources other than the synthetic market: files and PostgreSQL.

Every reader returns a :class:`TradeBatch` for one UTC day: the trades it could read, in the
``raw_trades`` columns plus ``_origin`` (where each row came from: ``path:line`` or
``"Trade" id=42``), and the rows it could not convert, each with the rule it broke. Problems that
make a whole source unreadable (a missing column, an unknown format, a database that does not
answer) raise :class:`SourceError` with a message naming the file or table.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from alevor_assets.lib.schemas import ORIGIN_COLUMN, UTC_US

TRADE_SCHEMA: dict[str, pl.DataType] = {
    "token": pl.Utf8,
    "trade_id": pl.Int64,
    "ts": UTC_US,
    "price": pl.Float64,
    "amount": pl.Float64,
    "side": pl.Utf8,
    ORIGIN_COLUMN: pl.Utf8,
}
REJECT_SCHEMA: dict[str, pl.DataType] = {ORIGIN_COLUMN: pl.Utf8, "rule": pl.Utf8, "raw": pl.Utf8}


class SourceError(RuntimeError):
    """A source cannot be read at all; the message names the file or table and why."""


@dataclass(frozen=True)
class TradeBatch:
    """One day of trades from a source.

    ``trades`` has :data:`TRADE_SCHEMA`; ``rejected`` has :data:`REJECT_SCHEMA` (``raw`` is the
    offending line or row as text, ``rule`` what is wrong with it, e.g. ``price is not a
    number``). ``empty_inputs`` names inputs that hold no rows at all (a 0-byte or header-only
    file), each as ``<file>: <why>``: such an input cannot say which day it was meant for, and
    ``raw_trades`` refuses to publish a day without trades while one exists, unless told the day
    is genuinely empty.
    """

    trades: pl.DataFrame
    rejected: pl.DataFrame
    empty_inputs: tuple[str, ...] = ()

    @staticmethod
    def empty() -> "TradeBatch":
        return TradeBatch(pl.DataFrame(schema=TRADE_SCHEMA), pl.DataFrame(schema=REJECT_SCHEMA))
