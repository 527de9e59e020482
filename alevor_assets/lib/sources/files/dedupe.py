"""One day's trades from several files: exact duplicates across files appear once, and trades
without a source id get derived ids (the rules: "Derived trade ids" in the package docstring).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from alevor_assets.lib.schemas import ORIGIN_COLUMN, UTC_US
from alevor_assets.lib.sources import REJECT_SCHEMA, TRADE_SCHEMA, SourceError

_MAX_K = 4095


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
    """``ts_ms * 4096 + k`` for the rows without a source id (see the package docstring)."""
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
