"""Label strategies: pluggable, registered by name, configured from a model spec.

A strategy is a dataclass whose fields are its parameters. It turns bars (and, for supervised pump
strategies, labelled events) into rows ``token, interval, ts, label, weight, horizon_end``, where
``horizon_end`` is the last instant the label looks at: validation purges training rows whose
horizon reaches into a test fold, and the label check rejects any label that does not look
strictly forward.

Add your own in a few lines::

    from dataclasses import dataclass
    import polars as pl
    from alevor_assets import LabelStrategy, register_label_strategy

    @register_label_strategy
    @dataclass(frozen=True)
    class BigMove(LabelStrategy):
        name = "big_move"
        task = "classification"
        threshold: float = 0.02

        def compute(self, ctx):
            bars = ctx.bars.sort("token", "ts")
            nxt = pl.col("close").shift(-1).over("token")
            return bars.select(
                "token", "interval", "ts",
                label=((nxt / pl.col("close") - 1).abs() > self.threshold).cast(pl.Int64),
                horizon_end=pl.col("ts").shift(-1).over("token") + ctx.step,
            ).drop_nulls()

A strategy that looks forward declares ``look_ahead(interval)`` so the asset reads enough later
bars; rows whose horizon is not yet covered by data are left out until it is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

import polars as pl

from alevor_assets.lib.intervals import duration, duration_us, interval_timedelta, interval_us
from alevor_assets.lib.schemas import UTC_US

LABEL_OUTPUT = ["token", "interval", "ts", "strategy", "label", "weight", "horizon_end"]


@dataclass(frozen=True)
class LabelContext:
    """Everything a strategy may look at for one run.

    ``bars`` holds the spec's interval only, sorted by token and ts, and spans from
    ``look_back`` before the first labelled day to ``look_ahead`` after the last one (as far as
    data exists). Rows whose ``horizon_end`` lies beyond the data are dropped by the caller.
    """

    bars: pl.DataFrame
    interval: str
    events: pl.DataFrame | None = None
    tokens: pl.DataFrame | None = None

    @property
    def step(self) -> timedelta:
        return interval_timedelta(self.interval)


class LabelStrategy:
    """Base class; subclasses are frozen dataclasses registered with ``@register_label_strategy``."""

    name: ClassVar[str]
    task: ClassVar[str]  # "classification" or "regression"
    needs_events: ClassVar[bool] = False

    def look_ahead(self, interval: str) -> timedelta:
        """How far after a bar's start the label looks (default: the bar itself)."""
        return interval_timedelta(interval)

    def look_back(self, interval: str) -> timedelta:
        """How much history before a bar the label needs (default: none)."""
        return timedelta(0)

    def compute(self, ctx: LabelContext) -> pl.DataFrame:  # pragma: no cover - interface
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}


_STRATEGIES: dict[str, type[LabelStrategy]] = {}
S = TypeVar("S", bound=type[LabelStrategy])


def register_label_strategy(cls: S) -> S:
    """Class decorator: make a strategy available to model specs under ``cls.name``."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"label strategy {cls.__name__} must be a dataclass")
    if getattr(cls, "task", None) not in ("classification", "regression"):
        raise TypeError(f"label strategy {cls.__name__} needs task 'classification' or 'regression'")
    _STRATEGIES[cls.name] = cls
    return cls


def label_strategies() -> dict[str, type[LabelStrategy]]:
    return dict(_STRATEGIES)


def make_label_strategy(name: str, params: dict[str, Any] | None = None) -> LabelStrategy:
    """Instantiate a registered strategy; unknown names or parameters are errors."""
    try:
        cls = _STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown label strategy {name!r}; registered: {sorted(_STRATEGIES)}") from None
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(params or {}) - fields
    if unknown:
        raise ValueError(f"label strategy {name!r} has no parameter(s) {sorted(unknown)}; it takes {sorted(fields)}")
    return cls(**(params or {}))


def finalize_labels(
    raw: pl.DataFrame, strategy_name: str, interval: str, task: str, data_end_us: int | None
) -> pl.DataFrame:
    """Bring a strategy's output to the labels contract and drop rows whose horizon is not yet
    covered by data (they are computed once later partitions exist)."""
    label_type = pl.Int64 if task == "classification" else pl.Float64
    out = raw.with_columns(
        pl.lit(interval).alias("interval"),
        pl.lit(strategy_name).alias("strategy"),
        pl.col("label").cast(label_type),
        (pl.col("weight") if "weight" in raw.columns else pl.lit(1.0)).cast(pl.Float64).alias("weight"),
        pl.col("horizon_end").cast(UTC_US),
    ).filter(pl.col("label").is_not_null())
    if data_end_us is not None:
        out = out.filter(pl.col("horizon_end").dt.epoch("us") <= data_end_us)
    return out.select(LABEL_OUTPUT).sort("token", "ts")


@register_label_strategy
@dataclass(frozen=True)
class PumpEvents(LabelStrategy):
    """Bars that overlap a labelled pump (and optionally dump) interval of their token.

    ``classes`` maps event types to label values; every other bar is 0. The default is the binary
    pump detector target; ``{pump: 1, dump: 2}`` gives the three-class variant.
    """

    name: ClassVar[str] = "pump_events"
    task: ClassVar[str] = "classification"
    needs_events: ClassVar[bool] = True
    classes: dict[str, int] = dataclasses.field(default_factory=lambda: {"pump": 1})

    def compute(self, ctx: LabelContext) -> pl.DataFrame:
        step = interval_us(ctx.interval)
        bars = ctx.bars.select("token", "ts").with_columns(
            start=pl.col("ts").dt.epoch("us"), end=pl.col("ts").dt.epoch("us") + step
        )
        label = pl.lit(0, dtype=pl.Int64)
        events = ctx.events if ctx.events is not None else pl.DataFrame(
            schema={"token": pl.Utf8, "type": pl.Utf8, "start_time": UTC_US, "end_time": UTC_US}
        )
        events = events.with_columns(
            e_start=pl.col("start_time").dt.epoch("us"), e_end=pl.col("end_time").dt.epoch("us")
        )
        # Lower class values first, so a bar touching both a pump and a dump takes the larger value.
        for event_type, value in sorted(self.classes.items(), key=lambda kv: kv[1]):
            ev = events.filter(pl.col("type") == event_type).select("token", "e_start", "e_end")
            hit = (
                bars.join(ev, on="token", how="inner")
                .filter((pl.col("start") < pl.col("e_end")) & (pl.col("end") > pl.col("e_start")))
                .select("token", "ts")
                .unique()
                .with_columns(pl.lit(True).alias(f"_hit_{event_type}"))
            )
            bars = bars.join(hit, on=["token", "ts"], how="left", maintain_order="left")
            label = pl.when(pl.col(f"_hit_{event_type}").fill_null(False)).then(pl.lit(value, pl.Int64)).otherwise(label)
        return bars.select(
            "token", "ts", label.alias("label"),
            horizon_end=(pl.col("end")).cast(pl.Int64).cast(UTC_US),
        )


def forward_close(bars: pl.DataFrame, step_us: int, horizon_us: int) -> pl.DataFrame:
    """Each bar's close and the token's last close at or before ``bar end + horizon``.

    Bars exist only when there were trades, so "the price at time t" is the last close at or
    before t (an as-of join), never the next bar's.
    """
    base = bars.select("token", "ts", "close").sort("token", "ts").with_columns(
        target=pl.col("ts").dt.epoch("us") + step_us + horizon_us
    )
    closes = bars.select(
        "token",
        bar_end=pl.col("ts").dt.epoch("us") + step_us,
        exit_close=pl.col("close"),
    ).sort("token", "bar_end")
    joined = base.sort("token", "target").join_asof(
        closes, left_on="target", right_on="bar_end", by="token", strategy="backward", check_sortedness=False
    )
    return joined.with_columns(horizon_end=pl.col("target").cast(UTC_US)).sort("token", "ts")


@register_label_strategy
@dataclass(frozen=True)
class ForwardReturn(LabelStrategy):
    """Return from a bar's close to the last close ``horizon`` after the bar ends (regression)."""

    name: ClassVar[str] = "forward_return"
    task: ClassVar[str] = "regression"
    horizon: str = "5m"
    log: bool = False

    def look_ahead(self, interval: str) -> timedelta:
        return interval_timedelta(interval) + duration(self.horizon)

    def compute(self, ctx: LabelContext) -> pl.DataFrame:
        fwd = forward_close(ctx.bars, interval_us(ctx.interval), duration_us(self.horizon))
        ratio = pl.col("exit_close") / pl.col("close")
        label = ratio.log() if self.log else ratio - 1.0
        return fwd.select("token", "ts", label.alias("label"), "horizon_end")


@register_label_strategy
@dataclass(frozen=True)
class Direction(LabelStrategy):
    """1 if the forward return over ``horizon`` exceeds ``threshold``, else 0 (classification)."""

    name: ClassVar[str] = "direction"
    task: ClassVar[str] = "classification"
    horizon: str = "5m"
    threshold: float = 0.0

    def look_ahead(self, interval: str) -> timedelta:
        return interval_timedelta(interval) + duration(self.horizon)

    def compute(self, ctx: LabelContext) -> pl.DataFrame:
        fwd = forward_close(ctx.bars, interval_us(ctx.interval), duration_us(self.horizon))
        up = (pl.col("exit_close") / pl.col("close") - 1.0) > self.threshold
        return fwd.select("token", "ts", up.cast(pl.Int64).alias("label"), "horizon_end")


