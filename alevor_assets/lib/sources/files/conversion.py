"""Conversion of a table into typed trades and rejected rows.

Each converter takes a source column and returns the value (null where unusable) and, per row,
the rule the row breaks (null when fine). They cast the whole column first and look again, more
slowly, only at the rows that did not convert, so clean files pay one cast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl

from alevor_assets.lib.sources import SourceError
from alevor_assets.lib.sources.files.formats import _REQUIRED, _shown, _Unit
from alevor_assets.lib.sources.files.parsing import _Table

# Instants a Python datetime can hold (years 1..9999); anything outside is not a valid time.
_MIN_US = -62_135_596_800_000_000
_MAX_US = 253_402_300_799_999_999
# %#z takes Z, +hh, +hhmm and +hh:mm.
_ZONED = "%Y-%m-%dT%H:%M:%S%.f%#z"
_ZONED_FORMATS = (_ZONED, "%Y-%m-%dT%H:%M%#z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


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


_SOURCE_COLUMNS = {
    "canonical": {"token": "token", "ts": "ts", "price": "price", "amount": "amount"},
    "ccxt": {"token": "symbol", "ts": "timestamp", "price": "price", "amount": "amount"},
    "binance_aggtrades": {"ts": "transact_time", "price": "price", "amount": "quantity"},
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
    names = _SOURCE_COLUMNS[table.fmt]  # contract column -> the format's column
    ts, ts_rule = _timestamp(origin, names["ts"], col(names["ts"]))
    price, price_rule = _float(origin, names["price"], "price", col(names["price"]))
    amount, amount_rule = _float(origin, names["amount"], "amount", col(names["amount"]))
    if table.fmt == "binance_aggtrades":
        # No symbol column: the token comes from the file name; the side from is_buyer_maker.
        token, token_rule = pl.repeat(_token_from_name(unit.name), n, dtype=pl.String, eager=True), _nulls(n)
        side, side_rule = _buyer_maker_side(origin, "is_buyer_maker", col("is_buyer_maker"))
        tid, tid_rule = _trade_id(origin, "agg_trade_id", col("agg_trade_id"), required=True)
    else:
        token, token_rule = _token(col(names["token"]))
        side, side_rule = _side(origin, "side", col("side"))
        if table.fmt == "ccxt":
            tid, tid_rule = _ccxt_ids(origin, df), _nulls(n)
        elif "trade_id" in df.columns:
            tid, tid_rule = _trade_id(origin, "trade_id", col("trade_id"), required=False)
        else:
            tid, tid_rule = _nulls(n, pl.Int64), _nulls(n)

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
            row.pop("_line"): _shown(json.dumps(row, default=str, ensure_ascii=False))
            for row in wanted.to_dicts()
        }
    wanted_set, last, found = set(lines), max(lines), {}
    with unit.open() as fh:
        for number, data in enumerate(fh, start=1):
            if number in wanted_set:
                text = data.rstrip(b"\r\n").decode("utf-8", errors="replace")
                found[number] = _shown(text.lstrip("\ufeff") if number == 1 else text)
            if number >= last:
                break
    return found
