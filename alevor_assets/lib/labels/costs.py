"""Labels that price a trade's execution: whether a simulated trade makes money after fees and
slippage (``edge``) and what filling an order of a given size costs (``friction``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

import numpy as np
import polars as pl

from alevor_assets.lib.intervals import duration, duration_us, interval_timedelta, interval_us
from alevor_assets.lib.labels.base import LabelContext, LabelStrategy, _check_positive, register_label_strategy
from alevor_assets.lib.labels.kernels import _arrays, _friction, _side_sign
from alevor_assets.lib.labels.returns import forward_close


_EDGE_SIDES = ("long", "short", "momentum")


@register_label_strategy
@dataclass(frozen=True)
class Edge(LabelStrategy):
    """Whether a simulated trade after costs makes money (classification).

    Side: +1 for ``"long"``, -1 for ``"short"``, or for ``"momentum"`` sign(close / close 10 bars
    earlier (same token) - 1) (bars without it or with a zero return are not labelled). Entry at
    this bar's close ``c0``, exit at ``forward_close``'s price: the token's last close at or before
    ``ts + interval + horizon``. ``gross = exit / c0 - 1``; ``net = side * gross - 2 * (fee_bps +
    slippage_bps) / 1e4`` (fee and slippage paid on entry and on exit). Label 1 when
    ``net > 0``, else 0; ``realized_return = net``. ``horizon_end = ts + interval + horizon``.

    Parameters: ``side`` (``"long"``), ``horizon`` (``"15m"``), ``fee_bps`` (10.0, per side),
    ``slippage_bps`` (5.0, per side).
    """

    name: ClassVar[str] = "edge"
    task: ClassVar[str] = "classification"
    MOMENTUM_BARS: ClassVar[int] = 10
    side: str = "long"
    horizon: str = "15m"
    fee_bps: float = 10.0
    slippage_bps: float = 5.0

    def __post_init__(self) -> None:
        if self.side not in _EDGE_SIDES:
            raise ValueError(f"side must be one of {_EDGE_SIDES}, got {self.side!r}")
        duration_us(self.horizon)
        _check_positive("fee_bps", self.fee_bps, allow_zero=True)
        _check_positive("slippage_bps", self.slippage_bps, allow_zero=True)

    def look_ahead(self, interval: str) -> timedelta:
        return interval_timedelta(interval) + duration(self.horizon)

    def look_back(self, interval: str) -> timedelta:
        return interval_timedelta(interval) * self.MOMENTUM_BARS if self.side == "momentum" else timedelta(0)

    def compute(self, ctx: LabelContext) -> pl.DataFrame:
        a = _arrays(ctx.bars)
        fwd = forward_close(a.frame, interval_us(ctx.interval), duration_us(self.horizon))
        if self.side == "momentum":
            side = _side_sign(a.col("close"), a.seg_start, self.MOMENTUM_BARS)
        else:
            side = np.full(a.frame.height, 1 if self.side == "long" else -1, np.int64)
        cost = 2.0 * (self.fee_bps + self.slippage_bps) / 1e4
        net = pl.col("_side") * (pl.col("exit_close") / pl.col("close") - 1.0) - cost
        return (
            fwd.with_columns(pl.Series("_side", side).cast(pl.Float64))
            .filter(pl.col("_side") != 0)
            .select("token", "ts", label=(net > 0).cast(pl.Int64), horizon_end="horizon_end", realized_return=net)
        )


@register_label_strategy
@dataclass(frozen=True)
class Friction(LabelStrategy):
    """Cost of executing a market order of ``order_quote`` quote units after this bar (regression).

    Walking the token's bars that start in ``(ts, ts + max_horizon]`` in order, the order takes
    at most ``participation * quote_volume`` of each bar at that bar's ``vwap`` until
    ``order_quote`` is filled (bars without volume or vwap are skipped). Execution price = the
    quote-weighted average of those vwaps (``sum(quote_j * vwap_j) / order_quote``). Slippage =
    ``exec / close - 1`` for ``side="buy"``, ``1 - exec / close`` for ``"sell"`` (``close`` of
    this bar); label = ``slippage + fee_bps / 1e4`` as a fraction (negative when the price moved
    in the order's favour). Orders not filled within ``max_horizon`` are not labelled.
    ``horizon_end`` = the filling bar's ``ts + interval``.

    Parameters: ``order_quote`` (1000.0), ``participation`` (0.1, in (0, 1]), ``fee_bps`` (10.0),
    ``max_horizon`` (``"30m"``), ``side`` (``"buy"`` or ``"sell"``).
    """

    name: ClassVar[str] = "friction"
    task: ClassVar[str] = "regression"
    order_quote: float = 1000.0
    participation: float = 0.1
    fee_bps: float = 10.0
    max_horizon: str = "30m"
    side: str = "buy"

    def __post_init__(self) -> None:
        _check_positive("order_quote", self.order_quote)
        if not (isinstance(self.participation, (int, float)) and 0 < self.participation <= 1):
            raise ValueError(f"participation must be in (0, 1], got {self.participation!r}")
        _check_positive("fee_bps", self.fee_bps, allow_zero=True)
        duration_us(self.max_horizon)
        if self.side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', got {self.side!r}")

    def look_ahead(self, interval: str) -> timedelta:
        return interval_timedelta(interval) + duration(self.max_horizon)

    def compute(self, ctx: LabelContext) -> pl.DataFrame:
        a = _arrays(ctx.bars)
        close = a.col("close")
        price, horizon_end = _friction(a.ts, close, a.col("vwap"), a.col("quote_volume"),
                                       a.end(duration_us(self.max_horizon)), float(self.order_quote),
                                       float(self.participation), interval_us(ctx.interval))
        slippage = price / close - 1.0 if self.side == "buy" else 1.0 - price / close
        label = slippage + self.fee_bps / 1e4
        return a.output(label, horizon_end, ~np.isnan(price))
