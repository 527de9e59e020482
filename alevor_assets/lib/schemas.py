"""The data contract: column names, types and rules of every data asset, as pandera models.

``lib/contract.py`` checks frames against these models (and the rules pandera cannot express)
and reports each failed rule with its column, count and example rows.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

UTC_US = pl.Datetime(time_unit="us", time_zone="UTC")
SIDES = ("buy", "sell")
EVENT_TYPES = ("pump", "dump")
EVENT_EXTENTS = ("given", "derived", "flat", "no_data")  # see lib/event_extents.py
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
EVENT_COLUMNS = [
    "token", "type", "start_time", "end_time", "announced_time", "extent", "reference_price", "peak_price", "rise",
]
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

    @pa.dataframe_check(name="notional price * amount finite")
    def _notional_finite(cls, data: pa.PolarsData) -> pl.LazyFrame:
        # Each factor can be finite while their product overflows (1e300 * 1e300); bars and
        # volumes would then carry inf far from the line that caused it.
        return data.lazyframe.select((pl.col("price") * pl.col("amount")).is_finite().alias("notional_finite"))


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
    """Known pump and dump episodes per token (ground truth for supervised pump strategies).
    ``extent`` says where ``start_time``/``end_time`` come from: ``given`` by the source, or
    ``derived`` from the trades around ``announced_time`` for a start-only event; ``flat`` and
    ``no_data`` events showed no pump (their extent is the searched window)."""

    token: str = pa.Field(str_length={"min_value": 1})
    type: str = pa.Field(isin=list(EVENT_TYPES))
    start_time: UTC_US  # type: ignore[valid-type]
    end_time: UTC_US  # type: ignore[valid-type]
    announced_time: UTC_US  # type: ignore[valid-type]
    extent: str = pa.Field(isin=list(EVENT_EXTENTS))
    reference_price: pl.Float64 = pa.Field(nullable=True, gt=0)
    peak_price: pl.Float64 = pa.Field(nullable=True, gt=0)
    rise: pl.Float64 = pa.Field(nullable=True)

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


class _Labelled(pa.DataFrameModel):
    """Keys of rows with a label; ``horizon_end`` is the last instant the label looks at."""

    token: str
    interval: str
    ts: UTC_US  # type: ignore[valid-type]
    horizon_end: UTC_US  # type: ignore[valid-type]


def _finite_label(data: pa.PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(pl.col("label").cast(pl.Float64).is_finite())


class Labels(_Labelled):
    """Training targets; ``horizon_end`` is the last instant a label looks at."""

    strategy: str
    weight: pl.Float64 = pa.Field(ge=0)

    class Config:
        unique = ["token", "interval", "ts", "strategy"]

    @pa.dataframe_check(name="horizon_end > ts (labels look forward, never back)")
    def _horizon(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("horizon_end") > pl.col("ts"))

    @pa.dataframe_check(name="label is finite")
    def _label_finite(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return _finite_label(data)


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


class TrainingSet(_Labelled):
    """Feature rows joined with their label, per model spec."""

    spec: str
    weight: pl.Float64 = pa.Field(gt=0)

    class Config:
        unique = ["spec", "token", "interval", "ts"]

    @pa.dataframe_check(name="label is finite")
    def _label_finite(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return _finite_label(data)


class Predictions(pa.DataFrameModel):
    """A spec's scores per token and bar: by its promoted model (``version``) or its fallback."""

    token: str
    interval: str
    ts: UTC_US  # type: ignore[valid-type]
    spec: str
    score: pl.Float64 = pa.Field(nullable=True)
    predicted: pl.Int64 = pa.Field(nullable=True)
    version: pl.Int64 = pa.Field(nullable=True)
    source: str = pa.Field(isin=["model", "fallback"])
    reason: str = pa.Field(nullable=True)

    class Config:
        unique = ["token", "interval", "ts"]

    @pa.dataframe_check(name="score finite or null")
    def _finite(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("score").is_finite() | pl.col("score").is_null())

    @pa.dataframe_check(name="model rows name their version; fallback rows their reason")
    def _provenance(cls, data: pa.PolarsData) -> pl.LazyFrame:
        model = pl.col("source") == "model"
        return data.lazyframe.select(pl.when(model).then(pl.col("version").is_not_null()).otherwise(pl.col("reason").is_not_null()))


class Alerts(pa.DataFrameModel):
    """The detectors' alerts: one per token and episode."""

    token: str
    interval: str
    ts: UTC_US  # type: ignore[valid-type]
    alerted_at: UTC_US  # type: ignore[valid-type]
    spec: str
    score: pl.Float64
    threshold: pl.Float64
    version: pl.Int64 = pa.Field(nullable=True)
    source: str = pa.Field(isin=["model", "fallback"])
    reason: str = pa.Field(nullable=True)
    top_features: str

    class Config:
        unique = ["spec", "token", "ts"]

    @pa.dataframe_check(name="score at or above its threshold")
    def _above(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("score") >= pl.col("threshold"))


SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "raw_trades": RawTrades,
    "tokens": Tokens,
    "labelled_events": LabelledEvents,
    "bars": Bars,
    "features": Features,
    "labels": Labels,
    "training_set": TrainingSet,
    "predictions": Predictions,
    "alerts": Alerts,
}


def sql_asset_schema(name: str, schema: dict[str, pl.DataType], unique: tuple[str, ...]) -> pa.DataFrameSchema:
    """The contract of a SQL-defined asset, from its result's columns: key columns non-null and
    unique; floats finite or null."""
    columns = {}
    for column, dtype in schema.items():
        if column == DATE_COLUMN:
            continue
        checks = [pa.Check(lambda d: d.lazyframe.select(pl.col(d.key).is_finite() | pl.col(d.key).is_null()), name="finite or null")] if dtype == pl.Float64 else []
        columns[column] = pa.Column(dtype, nullable=column not in unique, checks=checks)
    return pa.DataFrameSchema(columns, unique=list(unique) or None, name=name)
