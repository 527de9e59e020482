"""The data contract as pandera models, and one validation entry point for every asset.

Each data asset has a model here. :func:`validate` runs a model lazily (every rule, every row) and
returns a :class:`ValidationReport` that names each failed rule with its column, the number of
failing rows and example rows, so a failed check says exactly what to fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pandera.polars as pa
import polars as pl

UTC_US = pl.Datetime(time_unit="us", time_zone="UTC")
SIDES = ("buy", "sell")
EVENT_TYPES = ("pump", "dump")
# Columns that travel with rows through validation to say where a row came from (file and line,
# table and id). They are dropped before anything is written.
ORIGIN_COLUMN = "_origin"
DATE_COLUMN = "date"

RAW_TRADES_COLUMNS = ["token", "trade_id", "ts", "price", "amount", "side"]
BAR_COLUMNS = [
    "token", "interval", "ts", "open", "high", "low", "close", "volume", "quote_volume",
    "buy_volume", "sell_volume", "trade_count", "vwap",
]
TOKEN_COLUMNS = ["token", "symbol", "name", "address", "created_at"]
EVENT_COLUMNS = ["token", "type", "start_time", "end_time"]
LABEL_COLUMNS = ["token", "interval", "ts", "strategy", "label", "weight", "horizon_end"]
KEY_COLUMNS = ["token", "interval", "ts"]


class RawTrades(pa.DataFrameModel):
    """One row per trade, as the source reported it."""

    token: str = pa.Field(str_length={"min_value": 1})
    trade_id: pl.Int64
    ts: UTC_US  # type: ignore[valid-type]
    price: pl.Float64 = pa.Field(gt=0)
    amount: pl.Float64 = pa.Field(gt=0)
    side: str = pa.Field(isin=list(SIDES))

    class Config:
        unique = ["token", "trade_id"]

    @pa.check("price", "amount", name="finite")
    def _finite(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_finite())


class Tokens(pa.DataFrameModel):
    """Token metadata; ``created_at`` is null when the source does not know it."""

    token: str = pa.Field(str_length={"min_value": 1})
    symbol: str = pa.Field(nullable=True)
    name: str = pa.Field(nullable=True)
    address: str = pa.Field(nullable=True)
    created_at: UTC_US = pa.Field(nullable=True)  # type: ignore[valid-type]

    class Config:
        unique = ["token"]


class LabelledEvents(pa.DataFrameModel):
    """Known pump and dump episodes per token (ground truth for supervised pump strategies)."""

    token: str = pa.Field(str_length={"min_value": 1})
    type: str = pa.Field(isin=list(EVENT_TYPES))
    start_time: UTC_US  # type: ignore[valid-type]
    end_time: UTC_US  # type: ignore[valid-type]

    @pa.dataframe_check(name="end_time > start_time")
    def _ordered(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("end_time") > pl.col("start_time"))


class Bars(pa.DataFrameModel):
    """OHLCV bars; only buckets with at least one trade exist."""

    token: str = pa.Field(str_length={"min_value": 1})
    interval: str
    ts: UTC_US  # type: ignore[valid-type]
    open: pl.Float64 = pa.Field(gt=0)
    high: pl.Float64 = pa.Field(gt=0)
    low: pl.Float64 = pa.Field(gt=0)
    close: pl.Float64 = pa.Field(gt=0)
    volume: pl.Float64 = pa.Field(gt=0)
    quote_volume: pl.Float64 = pa.Field(gt=0)
    buy_volume: pl.Float64 = pa.Field(ge=0)
    sell_volume: pl.Float64 = pa.Field(ge=0)
    trade_count: pl.Int64 = pa.Field(gt=0)
    vwap: pl.Float64 = pa.Field(gt=0)

    @pa.dataframe_check(name="sorted by token, then strictly increasing ts (no duplicate bars)")
    def _monotonic(cls, data: pa.PolarsData) -> pl.LazyFrame:
        # A stored partition holds one interval sorted by (token, ts); strictly increasing keys
        # prove uniqueness without hashing tens of millions of rows. A new interval starts a new
        # block (for frames that stack several intervals).
        tok, ts, iv = pl.col("token"), pl.col("ts"), pl.col("interval")
        prev_tok, prev_ts, prev_iv = tok.shift(1), ts.shift(1), iv.shift(1)
        return data.lazyframe.select(
            prev_tok.is_null() | (iv != prev_iv) | (tok > prev_tok) | ((tok == prev_tok) & (ts > prev_ts))
        )

    @pa.dataframe_check(name="low <= open, close, vwap <= high")
    def _ohlc_envelope(cls, data: pa.PolarsData) -> pl.LazyFrame:
        # vwap is a mean of prices inside [low, high]; allow for float rounding of sum/sum.
        tol = pl.col("high") * 1e-12
        return data.lazyframe.select(
            (pl.col("low") <= pl.min_horizontal("open", "close"))
            & (pl.col("high") >= pl.max_horizontal("open", "close"))
            & (pl.col("vwap") >= pl.col("low") - tol)
            & (pl.col("vwap") <= pl.col("high") + tol)
        )

    @pa.dataframe_check(name="buy_volume + sell_volume == volume")
    def _volume_split(cls, data: pa.PolarsData) -> pl.LazyFrame:
        total = pl.col("buy_volume") + pl.col("sell_volume")
        return data.lazyframe.select((total - pl.col("volume")).abs() <= pl.col("volume") * 1e-9)


class Labels(pa.DataFrameModel):
    """Training targets; ``horizon_end`` is the last instant a label looks at."""

    token: str
    interval: str
    ts: UTC_US  # type: ignore[valid-type]
    strategy: str
    weight: pl.Float64 = pa.Field(ge=0)
    horizon_end: UTC_US  # type: ignore[valid-type]

    class Config:
        unique = ["token", "interval", "ts", "strategy"]

    @pa.dataframe_check(name="horizon_end > ts (labels look forward, never back)")
    def _horizon(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("horizon_end") > pl.col("ts"))

    @pa.dataframe_check(name="label is finite")
    def _label_finite(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("label").cast(pl.Float64).is_finite())


class Features(pa.DataFrameModel):
    """Keys of a feature snapshot; every other column is a float feature (null during warm-up)."""

    token: str
    interval: str
    ts: UTC_US  # type: ignore[valid-type]

    class Config:
        unique = ["token", "interval", "ts"]

    @pa.dataframe_check(name="feature values are finite or null")
    def _finite(cls, data: pa.PolarsData) -> pl.LazyFrame:
        feats = [c for c, t in data.lazyframe.collect_schema().items() if t == pl.Float64]
        if not feats:
            return data.lazyframe.select(pl.lit(True))
        return data.lazyframe.select(
            pl.all_horizontal([pl.col(c).is_finite() | pl.col(c).is_null() for c in feats])
        )


class TrainingSet(pa.DataFrameModel):
    """Feature rows joined with their label, per model spec."""

    token: str
    interval: str
    ts: UTC_US  # type: ignore[valid-type]
    spec: str
    weight: pl.Float64 = pa.Field(gt=0)
    horizon_end: UTC_US  # type: ignore[valid-type]

    class Config:
        unique = ["spec", "token", "interval", "ts"]

    @pa.dataframe_check(name="label is finite")
    def _label_finite(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("label").cast(pl.Float64).is_finite())


SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "raw_trades": RawTrades,
    "tokens": Tokens,
    "labelled_events": LabelledEvents,
    "bars": Bars,
    "features": Features,
    "labels": Labels,
    "training_set": TrainingSet,
}


@dataclass(frozen=True)
class RuleFailure:
    """One failed rule: which column, how many rows, and a few of them."""

    rule: str
    column: str | None
    count: int
    examples: list[dict[str, Any]]
    rows: tuple[int, ...] = ()  # every failing row number, when the rule is about single rows

    def describe(self) -> str:
        where = f"{self.column}: " if self.column else ""
        rows = ", ".join(_example_ref(e) for e in self.examples)
        return f"{where}{self.rule} failed for {self.count} row(s), e.g. {rows}"


@dataclass
class ValidationReport:
    """Outcome of validating one asset's new partitions."""

    asset: str
    rows: int
    failures: list[RuleFailure] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failed_rows(self) -> int:
        return sum(f.count for f in self.failures)

    @property
    def bad_rows(self) -> set[int]:
        """Row numbers that break at least one row-level rule."""
        return {r for f in self.failures for r in f.rows}

    def summary(self) -> str:
        if self.passed:
            return f"{self.asset}: all rules passed on {self.rows} rows"
        lines = [f"{self.asset}: {len(self.failures)} rule(s) failed on {self.rows} rows:"]
        lines += [f"  - {f.describe()}" for f in self.failures]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        if self.passed:
            return f"All rules passed on {self.rows} rows."
        out = ["| rule | column | failing rows | examples |", "|---|---|---|---|"]
        for f in self.failures:
            ex = "<br>".join(_md_escape(json.dumps(e, default=str)) for e in f.examples)
            out.append(f"| {_md_escape(f.rule)} | {f.column or '(row)'} | {f.count} | {ex} |")
        return "\n".join(out)

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {"rule": f.rule, "column": f.column, "count": f.count, "examples": f.examples}
            for f in self.failures
        ]


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _example_ref(example: dict[str, Any]) -> str:
    origin = example.get(ORIGIN_COLUMN)
    if example.get("row") is None:
        if origin:
            return f"{origin}" + (f" {example['raw']!r}" if example.get("raw") is not None else "")
        return "{" + ", ".join(f"{k}={v}" for k, v in example.items() if k != "row") + "}"
    ref = f"row {example['row']}"
    if DATE_COLUMN in example:
        ref += f" of {example[DATE_COLUMN]}"
    return f"{ref} ({origin})" if origin else ref


_RULE_NAMES = {
    "not_nullable": "not null or NaN",
    "multiple_fields_uniqueness": "unique key",
    "field_uniqueness": "unique",
    "column_in_dataframe": "column present",
    "dtype": "dtype",
}


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def validate(
    asset: str,
    df: pl.DataFrame,
    *,
    schema: type[pa.DataFrameModel] | pa.DataFrameSchema | None = None,
    ts_column: str | None = None,
    max_examples: int = 5,
) -> ValidationReport:
    """Validate ``df`` against the asset's contract, collecting every failure.

    If the frame carries a ``date`` column (the partition each row was produced for) and
    ``ts_column`` is given, rows whose timestamp falls outside their partition's UTC day fail too.
    Example rows keep the ``_origin`` column when present, so a failure can point at a file and
    line or a table id.
    """
    model = schema or SCHEMAS[asset]
    frame_schema = model if isinstance(model, pa.DataFrameSchema) else _schema_of(model)
    data = df.with_row_index("__row")
    # The fast gate proves the common case (everything passes) in one pass; pandera runs only
    # when something fails, to name each rule, count it and pick example rows.
    failures = [] if _fast_pass(frame_schema, df) else _pandera_failures(model, data, max_examples)
    if ts_column and DATE_COLUMN in df.columns and df.height:
        day_start = pl.col(DATE_COLUMN).cast(UTC_US)
        outside = data.filter(
            (pl.col(ts_column) < day_start) | (pl.col(ts_column) >= day_start + pl.duration(days=1))
        )
        if outside.height:
            failures.append(
                RuleFailure(
                    rule=f"{ts_column} within its partition's UTC day",
                    column=ts_column,
                    count=outside.height,
                    examples=_examples(outside, max_examples),
                    rows=tuple(outside["__row"].to_list()),
                )
            )
    return ValidationReport(asset=asset, rows=df.height, failures=failures)


@lru_cache(maxsize=None)
def _schema_of(model: type[pa.DataFrameModel]) -> pa.DataFrameSchema:
    return model.to_schema()


def _pandera_failures(
    model: type[pa.DataFrameModel] | pa.DataFrameSchema, data: pl.DataFrame, max_examples: int
) -> list[RuleFailure]:
    name = model.name if isinstance(model, pa.DataFrameSchema) else model.__name__
    try:
        model.validate(data.drop("__row"), lazy=True)
    except pa.errors.SchemaErrors as exc:
        return _failures_from_pandera(exc.failure_cases, data, max_examples, name)
    except pa.errors.SchemaError as exc:  # a structural problem stops pandera early
        return [RuleFailure(rule=str(exc).splitlines()[0], column=None, count=data.height, examples=[])]
    return []


_BUILTIN = {
    "greater_than": lambda c, st: c > st["min_value"],
    "greater_than_or_equal_to": lambda c, st: c >= st["min_value"],
    "less_than": lambda c, st: c < st["max_value"],
    "less_than_or_equal_to": lambda c, st: c <= st["max_value"],
    "isin": lambda c, st: c.is_in(list(st["allowed_values"])),
    "str_length": lambda c, st: (c.str.len_chars() >= (st["min_value"] or 0))
    & (c.str.len_chars() <= (st["max_value"] if st["max_value"] is not None else 2**62)),
}


def _fast_pass(schema: pa.DataFrameSchema, df: pl.DataFrame) -> bool:
    """True only if every rule of ``schema`` certainly holds on ``df``. Anything it cannot
    evaluate the way pandera does (an unknown check, a coerced column) makes it answer False, so
    the full pandera run decides."""
    from pandera.api.polars.types import PolarsData

    if schema.coerce or schema.strict:
        return False
    lf = df.lazy()
    exprs: list[pl.Expr] = []
    customs: list[pl.LazyFrame] = []
    for name, col in schema.columns.items():
        if name not in df.columns or col.coerce or (col.dtype is not None and df.schema[name] != col.dtype.type):
            return False
        c = pl.col(name)
        if not col.nullable:
            exprs.append(c.is_not_null() & (~c.is_nan() if df.schema[name].is_float() else pl.lit(True)))
        for check in col.checks:
            if check.name in _BUILTIN:
                exprs.append(_BUILTIN[check.name](c, check.statistics) | c.is_null())
            elif getattr(check, "_check_fn", None) is not None and check.name not in pa.Check.__dict__:
                customs.append(check._check_fn(PolarsData(lf, name)))
            else:
                return False
    for check in schema.checks:
        customs.append(check._check_fn(PolarsData(lf)))
    if schema.unique:
        exprs.append(~pl.struct(list(schema.unique)).is_duplicated())
    if df.height == 0:
        return True
    if exprs and not df.select(pl.all_horizontal(exprs).all()).item():
        return False
    for result in customs:
        # A check's result is a frame of booleans; a null (unknown) counts as a failure here.
        if not result.select(pl.all_horizontal(pl.all().fill_null(False)).all()).collect().item():
            return False
    return True


def _failures_from_pandera(
    cases: pl.DataFrame, data: pl.DataFrame, max_examples: int, schema_name: str
) -> list[RuleFailure]:
    failures = []
    cases = cases.with_columns(pl.col("index").cast(pl.Int64))
    for (column, check), group in cases.group_by(["column", "check"], maintain_order=True):
        rule = _RULE_NAMES.get(str(check), str(check))
        col = None if column in (None, "", schema_name) else str(column)
        idx = group["index"].drop_nulls().unique().sort()
        if idx.len() == 0:
            failures.append(RuleFailure(rule=f"{rule}: {group['failure_case'][0]}", column=col, count=1, examples=[]))
            continue
        rows = data.filter(pl.col("__row").is_in(idx.head(max_examples).implode()))
        failures.append(
            RuleFailure(rule=rule, column=col, count=idx.len(), examples=_examples(rows, max_examples), rows=tuple(idx.to_list()))
        )
    return failures


def _examples(rows: pl.DataFrame, limit: int) -> list[dict[str, Any]]:
    out = []
    for rec in rows.head(limit).to_dicts():
        rec["row"] = rec.pop("__row")
        out.append({k: _plain(v) for k, v in rec.items()})
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def rejected_failures(rejected: pl.DataFrame, max_examples: int = 5) -> list[RuleFailure]:
    """Rows a source could not convert (``_origin``, ``rule``, ``raw``), one failure per rule."""
    out = []
    for (rule,), group in rejected.group_by(["rule"], maintain_order=True):
        examples = [{"row": None, **r} for r in group.head(max_examples).to_dicts()]
        out.append(RuleFailure(rule=str(rule), column=None, count=group.height, examples=examples))
    return out
