"""What a label strategy is and does: the context it reads, the base class, the registry and the
step that brings every strategy's output to the labels contract.

A strategy is a dataclass whose fields are its parameters. It turns bars (and, for supervised pump
strategies, labelled events) into rows ``token, interval, ts, label, weight, horizon_end``, where
``horizon_end`` is the last instant the label looks at: validation purges training rows whose
horizon reaches into a test fold, and the label check rejects any label that does not look
strictly forward.

A strategy that looks forward declares ``look_ahead(interval)`` so the asset reads enough later
bars; rows whose horizon is not yet covered by data are left out until it is. One that needs
history before a bar (volatility, a primary side) declares ``look_back(interval)``.

A strategy may also return ``realized_return`` (f64, nullable): the return a trade following the
label's decision earned (net of costs where the strategy models them), for a later backtest;
``finalize_labels`` keeps it after ``horizon_end``.

Time convention: a bar ``[ts, ts + interval)`` is known at ``ts + interval``; "the next bars" of a
bar are its token's bars that start in ``(ts, ts + horizon]``, so ``horizon_end = ts + interval +
horizon`` covers the last of them. Every strategy restarts at each token.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

import polars as pl

from alevor_assets.lib.intervals import interval_timedelta
from alevor_assets.lib.plugins import Registry
from alevor_assets.lib.schemas import UTC_US

LABEL_OUTPUT = ["token", "interval", "ts", "strategy", "label", "weight", "horizon_end"]
# Optional column a strategy may add (kept after ``horizon_end`` when present).
REALIZED_RETURN = "realized_return"


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
    # Positive labels mark episodes (runs of bars) to detect: event recall and detection delay apply.
    detects_events: ClassVar[bool] = False
    # Needs each token's creation time (tokens.created_at), which not every source knows.
    needs_token_age: ClassVar[bool] = False

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


_STRATEGIES: Registry[LabelStrategy] = Registry("label strategy", "parameter")
S = TypeVar("S", bound=type[LabelStrategy])


def register_label_strategy(cls: S) -> S:
    """Class decorator: make a strategy available to model specs under ``cls.name``."""
    return _STRATEGIES.register(cls)


def label_strategies() -> dict[str, type[LabelStrategy]]:
    return _STRATEGIES.all()


def make_label_strategy(name: str, params: dict[str, Any] | None = None) -> LabelStrategy:
    """Instantiate a registered strategy; unknown names or parameters are errors."""
    return _STRATEGIES.make(name, params)


def finalize_labels(
    raw: pl.DataFrame, strategy_name: str, interval: str, task: str, data_end_us: int | None
) -> pl.DataFrame:
    """Bring a strategy's output to the labels contract and drop rows whose horizon is not yet
    covered by data (they are computed once later partitions exist).

    Rows with a null label are dropped. An optional ``realized_return`` column is kept (as f64,
    nullable) after ``horizon_end``; without it none is added."""
    label_type = pl.Int64 if task == "classification" else pl.Float64
    columns = list(LABEL_OUTPUT)
    extra = []
    if REALIZED_RETURN in raw.columns:
        columns.append(REALIZED_RETURN)
        extra.append(pl.col(REALIZED_RETURN).cast(pl.Float64))
    out = raw.with_columns(
        pl.lit(interval).alias("interval"),
        pl.lit(strategy_name).alias("strategy"),
        pl.col("label").cast(label_type),
        (pl.col("weight") if "weight" in raw.columns else pl.lit(1.0)).cast(pl.Float64).alias("weight"),
        pl.col("horizon_end").cast(UTC_US),
        *extra,
    ).filter(pl.col("label").is_not_null())
    if data_end_us is not None:
        out = out.filter(pl.col("horizon_end").dt.epoch("us") <= data_end_us)
    return out.select(columns).sort("token", "ts")


def _check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number and (value >= 0 if allow_zero else value > 0)):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
