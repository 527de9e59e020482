"""Labels from the price path ahead of a bar: the forward return (``forward_return``), its sign
(``direction``), whether several horizons agree (``signal_consistency``) and the coming market
regime (``regime``). ``forward_close`` is the exit price they (and ``edge``) share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

import polars as pl

from alevor_assets.lib.intervals import duration, duration_us, interval_timedelta, interval_us
from alevor_assets.lib.labels.base import LabelContext, LabelStrategy, _check_positive, register_label_strategy
from alevor_assets.lib.labels.kernels import _arrays, _regime
from alevor_assets.lib.schemas import UTC_US


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
        return fwd.select("token", "ts", label.alias("label"), "horizon_end", (ratio - 1.0).alias("realized_return"))


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
        forward = pl.col("exit_close") / pl.col("close") - 1.0
        return fwd.select(
            "token", "ts", (forward > self.threshold).cast(pl.Int64).alias("label"), "horizon_end",
            forward.alias("realized_return"),
        )


@register_label_strategy
@dataclass(frozen=True)
class Regime(LabelStrategy):
    """Market regime of the coming ``horizon``: NO_TRADE=0, RANGE=1, TREND=2 (classification).

    Over the token's next bars, those starting in ``(ts, ts + horizon]``, with ``c0`` this bar's
    close and ``c1 .. cn`` their closes (``n`` bars):

    - ``move = |cn / c0 - 1|``; ``path = sum |ck / c(k-1) - 1|`` for k = 1..n;
      ``efficiency = move / path`` (0 when path is 0);
    - ``volatility`` = population std of the n log returns ``ln(ck / c(k-1))``, times sqrt(n)
      (0 when n < 2).

    Label **0 = NO_TRADE** when ``n < 3`` or ``volatility < min_volatility``; otherwise **2 =
    TREND** when ``efficiency >= efficiency`` and ``move >= min_move``; otherwise **1 = RANGE**.
    ``horizon_end = ts + interval + horizon``.

    Parameters: ``horizon`` (``"1h"``), ``efficiency`` (0.35), ``min_move`` (0.01, fraction),
    ``min_volatility`` (0.002, log-return units over the window).
    """

    name: ClassVar[str] = "regime"
    task: ClassVar[str] = "classification"
    NO_TRADE: ClassVar[int] = 0
    RANGE: ClassVar[int] = 1
    TREND: ClassVar[int] = 2
    horizon: str = "1h"
    efficiency: float = 0.35
    min_move: float = 0.01
    min_volatility: float = 0.002

    def __post_init__(self) -> None:
        duration_us(self.horizon)
        _check_positive("efficiency", self.efficiency, allow_zero=True)
        _check_positive("min_move", self.min_move, allow_zero=True)
        _check_positive("min_volatility", self.min_volatility, allow_zero=True)

    def look_ahead(self, interval: str) -> timedelta:
        return interval_timedelta(interval) + duration(self.horizon)

    def compute(self, ctx: LabelContext) -> pl.DataFrame:
        a = _arrays(ctx.bars)
        horizon = duration_us(self.horizon)
        label = _regime(a.ts, a.col("close"), a.seg_start, a.seg_end, horizon, float(self.efficiency),
                        float(self.min_move), float(self.min_volatility))
        return a.output(label, a.ts + interval_us(ctx.interval) + horizon)


@register_label_strategy
@dataclass(frozen=True)
class SignalConsistency(LabelStrategy):
    """Whether the forward returns over several horizons agree in direction (classification).

    For each horizon ``h`` the forward return is ``forward_close``'s: from this bar's close to the
    token's last close at or before ``bar end + h`` (``ts + interval + h``). Label 1 when every
    return is ``> threshold`` or every return is ``< -threshold``, else 0.
    ``realized_return`` = the return at the longest horizon times +1 (all up), -1 (all down) or 0
    (inconsistent). ``horizon_end = ts + interval + longest horizon``.

    Parameters: ``horizons`` (``("5m", "15m", "1h")``), ``threshold`` (0.0, fraction).
    """

    name: ClassVar[str] = "signal_consistency"
    task: ClassVar[str] = "classification"
    horizons: tuple[str, ...] = ("5m", "15m", "1h")
    threshold: float = 0.0

    def __post_init__(self) -> None:
        horizons = (self.horizons,) if isinstance(self.horizons, str) else tuple(self.horizons)
        if not horizons:
            raise ValueError("signal_consistency needs at least one horizon")
        for h in horizons:
            duration_us(h)
        object.__setattr__(self, "horizons", horizons)
        _check_positive("threshold", self.threshold, allow_zero=True)

    def _longest(self) -> str:
        return max(self.horizons, key=duration_us)

    def look_ahead(self, interval: str) -> timedelta:
        return interval_timedelta(interval) + duration(self._longest())

    def compute(self, ctx: LabelContext) -> pl.DataFrame:
        step = interval_us(ctx.interval)
        longest = self._longest()
        base = None
        returns = []
        for k, h in enumerate(self.horizons):
            fwd = forward_close(ctx.bars, step, duration_us(h))
            if base is None:
                base = fwd.select("token", "ts", "close")
            base = base.with_columns((fwd["exit_close"] / fwd["close"] - 1.0).alias(f"_r{k}"))
            returns.append(pl.col(f"_r{k}"))
        assert base is not None
        longest_r = pl.col(f"_r{self.horizons.index(longest)}")
        up = pl.all_horizontal([r > self.threshold for r in returns])
        down = pl.all_horizontal([r < -self.threshold for r in returns])
        direction = pl.when(up).then(1.0).when(down).then(-1.0).otherwise(0.0)
        return base.select(
            "token", "ts",
            label=(up | down).cast(pl.Int64),
            horizon_end=(pl.col("ts").dt.epoch("us") + step + duration_us(longest)).cast(UTC_US),
            realized_return=direction * longest_r,
        )
