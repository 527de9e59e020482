"""Triple-barrier labels (de Prado): the outcome of a volatility-scaled profit-take / stop-loss /
time barrier (``triple_barrier``) and the meta-label of a momentum side against it
(``triple_barrier_meta``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

import numpy as np
import polars as pl

from alevor_assets.lib.intervals import duration, duration_us, interval_timedelta, interval_us
from alevor_assets.lib.labels.base import LabelContext, LabelStrategy, _check_positive, register_label_strategy
from alevor_assets.lib.labels.kernels import _Arrays, _arrays, _ewm_std_log_returns, _side_sign, _triple_barrier


def _check_barrier_params(s: Any) -> None:
    _check_positive("profit_take", s.profit_take)
    _check_positive("stop_loss", s.stop_loss)
    duration_us(s.horizon)
    if not (isinstance(s.vol_span, int) and s.vol_span >= 1):
        raise ValueError(f"vol_span must be an integer >= 1, got {s.vol_span!r}")


def _barrier_outcome(s: Any, a: _Arrays, interval: str):
    step, horizon = interval_us(interval), duration_us(s.horizon)
    close = a.col("close")
    sigma = _ewm_std_log_returns(close, a.seg_start, float(s.vol_span))
    return _triple_barrier(a.ts, close, a.col("high"), a.col("low"), sigma, a.end(horizon),
                           float(s.profit_take), float(s.stop_loss), step, horizon)


@register_label_strategy
@dataclass(frozen=True)
class TripleBarrier(LabelStrategy):
    """Triple-barrier outcome (de Prado), classes -1 / 0 / 1 (classification).

    ``sigma`` = the token's EWM std of 1-bar log returns ``ln(close / previous close)`` up to and
    including this bar (pandas ``ewm(span=vol_span, adjust=False).std()``, bias-corrected; no
    look-ahead); rows where sigma is undefined (fewer than two returns) or 0 are not labelled.
    Barriers: upper ``c0 * exp(profit_take * sigma)``, lower ``c0 * exp(-stop_loss * sigma)``,
    with ``c0`` this bar's close. Scanning the token's bars that start in ``(ts, ts + horizon]``
    in order, the first bar with ``low <= lower`` gives -1 and the first with ``high >= upper``
    gives 1 (a bar touching both gives -1, conservatively); no touch gives 0.
    ``realized_return`` = log return to the exit: ``profit_take * sigma`` or ``-stop_loss *
    sigma`` at a barrier, else ``ln(last close within the horizon / c0)`` (0 without any bar).
    ``horizon_end`` = the touching bar's ``ts + interval``, else ``ts + interval + horizon``.

    Parameters: ``profit_take`` (2.0, in sigmas), ``stop_loss`` (2.0, in sigmas), ``horizon``
    (``"1h"``), ``vol_span`` (50 bars). ``look_back`` is ``5 * vol_span`` bars of the interval,
    after which the EWM's start weighs less than ``(1 - 2 / (vol_span + 1)) ** (5 * vol_span)``
    (about 4e-5 for the default), so labels at the start of a day match a continuous series.
    """

    name: ClassVar[str] = "triple_barrier"
    task: ClassVar[str] = "classification"
    profit_take: float = 2.0
    stop_loss: float = 2.0
    horizon: str = "1h"
    vol_span: int = 50

    def __post_init__(self) -> None:
        _check_barrier_params(self)

    def look_ahead(self, interval: str) -> timedelta:
        return interval_timedelta(interval) + duration(self.horizon)

    def look_back(self, interval: str) -> timedelta:
        return interval_timedelta(interval) * (5 * self.vol_span)

    def compute(self, ctx: LabelContext) -> pl.DataFrame:
        a = _arrays(ctx.bars)
        label, valid, realized, horizon_end = _barrier_outcome(self, a, ctx.interval)
        return a.output(label, horizon_end, valid, realized)


@register_label_strategy
@dataclass(frozen=True)
class TripleBarrierMeta(LabelStrategy):
    """Meta-label of a momentum side against the triple barrier (classification, 0/1).

    Primary side = sign(close / close ``side_lookback`` bars earlier (same token) - 1), known at
    the bar; bars without that earlier bar or with a zero return are not labelled. With the
    ``triple_barrier`` outcome of the same parameters (rows it leaves out are left out too),
    label 1 when the outcome equals the side (1 for long, -1 for short), else 0 (a timeout is
    never a success). ``realized_return = side * triple_barrier realized_return``;
    ``horizon_end`` as ``triple_barrier``.

    Parameters: ``profit_take`` (2.0), ``stop_loss`` (2.0), ``horizon`` (``"1h"``), ``vol_span``
    (50), ``side_lookback`` (10 bars).
    """

    name: ClassVar[str] = "triple_barrier_meta"
    task: ClassVar[str] = "classification"
    profit_take: float = 2.0
    stop_loss: float = 2.0
    horizon: str = "1h"
    vol_span: int = 50
    side_lookback: int = 10

    def __post_init__(self) -> None:
        _check_barrier_params(self)
        if not (isinstance(self.side_lookback, int) and self.side_lookback >= 1):
            raise ValueError(f"side_lookback must be an integer >= 1, got {self.side_lookback!r}")

    def look_ahead(self, interval: str) -> timedelta:
        return interval_timedelta(interval) + duration(self.horizon)

    def look_back(self, interval: str) -> timedelta:
        return interval_timedelta(interval) * max(5 * self.vol_span, self.side_lookback)

    def compute(self, ctx: LabelContext) -> pl.DataFrame:
        a = _arrays(ctx.bars)
        outcome, valid, realized, horizon_end = _barrier_outcome(self, a, ctx.interval)
        side = _side_sign(a.col("close"), a.seg_start, int(self.side_lookback))
        label = (outcome == side).astype(np.int64)
        return a.output(label, horizon_end, valid & (side != 0), side * realized)
