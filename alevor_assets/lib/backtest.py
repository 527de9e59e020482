"""Cost-aware backtest of model signals (plain NumPy, no Dagster).

Rules:

* Every row is a candidate trade of one token: ``position`` is -1 (short), 0 (no trade) or +1
  (long). A trade opened on a row lasts from its ``ts`` to its ``horizon_end``. Rows whose
  ``realized_return`` is not finite (NaN/inf) are treated as position 0.
* Per token, trades never overlap: each token's rows are processed in ``ts`` order (ties in input
  order) and a signal is skipped while that token's previous trade is still open, i.e. while
  ``ts < horizon_end`` of that trade. A trade may open exactly at the previous one's
  ``horizon_end``. Skipped signals do not extend the open trade.
* Gross trade return = ``position * realized_return``, where ``realized_return`` is the
  underlying's simple return over ``[ts, horizon_end)``. Net = gross - 2 * (fee_bps +
  slippage_bps) / 1e4 (fee and slippage paid on entry and on exit). With
  ``returns_are_net=True`` the ``realized_return`` already is the trade's net return: net =
  ``realized_return`` and ``position`` only selects the rows that trade (its sign is ignored).
* Portfolio: the trades of all tokens are applied in order of exit time (``horizon_end``), ties
  by entry time (``ts``), then token. Equity starts at 1.0 and each trade multiplies it by
  ``1 + risk_fraction * net``. ``equity[i]`` is the equity after the i-th trade and
  ``equity_ts_us[i]`` that trade's exit time.

Metrics:

* ``trades``: number of trades taken.
* ``hit_rate``: share of trades with net > 0 (None without trades).
* ``profit_factor``: sum of positive nets / |sum of negative nets| (None without trades or
  without losing trades).
* ``max_drawdown``: max over time of ``1 - equity / running peak``, the running peak including
  the starting 1.0; a positive fraction (0.0 without trades).
* ``sharpe``: annualized Sharpe ratio of daily equity returns. The equity curve is grouped by
  UTC day of exit (the last equity of each day); every calendar day from the first to the last
  trade day gets a simple return against the previous day's last equity (1.0 before the first
  day), days without trades returning 0. ``sharpe = mean / std(ddof=1) * sqrt(365)``; None with
  fewer than 2 days or a zero standard deviation.
* ``total_return``: final equity - 1 (0.0 without trades).
* ``avg_trade_return``: mean net trade return (None without trades).
* ``exposure``: trades / input rows (None for empty input).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

DAY_US = 86_400_000_000


@dataclass(frozen=True)
class BacktestResult:
    metrics: dict[str, float | int | None]
    equity_ts_us: np.ndarray  # exit time of each trade, ascending
    equity: np.ndarray  # equity after each trade (starting value 1.0 is not included)


@njit(cache=True, nogil=True)
def _select_trades(codes, ts, end, active):  # pragma: no cover - compiled
    """Rows in (token, ts) order: True where a trade opens (no overlap within a token)."""
    n = len(codes)
    taken = np.zeros(n, np.bool_)
    open_until = np.int64(0)
    for i in range(n):
        if i == 0 or codes[i] != codes[i - 1]:
            open_until = np.iinfo(np.int64).min
        if active[i] and ts[i] >= open_until:
            taken[i] = True
            open_until = end[i]
    return taken


def _as_us(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind == "M":
        a = a.astype("datetime64[us]")
    return a.astype(np.int64)


def _token_codes(token: np.ndarray) -> np.ndarray:
    t = np.asarray(token)
    if t.dtype.kind in "iub":
        return t.astype(np.int64)
    _, codes = np.unique(t, return_inverse=True)  # codes follow the sorted token values
    return codes.reshape(-1).astype(np.int64)


def daily_sharpe(equity_ts_us: np.ndarray, equity: np.ndarray) -> float | None:
    """Annualized Sharpe of daily equity returns (see module docstring)."""
    if len(equity) == 0:
        return None
    day = np.floor_divide(equity_ts_us, DAY_US)
    last = np.flatnonzero(np.append(day[1:] != day[:-1], True))  # last trade of each day
    d0 = int(day[0])
    n_days = int(day[-1]) - d0 + 1
    if n_days < 2:
        return None
    pos = np.full(n_days, -1, dtype=np.int64)
    pos[day[last] - d0] = last
    pos = np.maximum.accumulate(pos)  # days without trades carry the previous day's equity
    eod = equity[pos]
    base = np.concatenate(([1.0], eod[:-1]))
    r = eod / base - 1.0
    sd = float(np.std(r, ddof=1))
    if sd == 0.0 or not math.isfinite(sd):
        return None
    return float(np.mean(r) / sd * math.sqrt(365.0))


def backtest(
    token: np.ndarray,
    ts_us: np.ndarray,
    horizon_end_us: np.ndarray,
    position: np.ndarray,
    realized_return: np.ndarray,
    *,
    fee_bps: float = 10.0,
    slippage_bps: float = 5.0,
    risk_fraction: float = 0.1,
    returns_are_net: bool = False,
) -> BacktestResult:
    """Backtest one signal per row; see the module docstring for the exact rules."""
    codes = _token_codes(token)
    ts = _as_us(ts_us)
    end = _as_us(horizon_end_us)
    pos = np.asarray(position, dtype=np.float64)
    ret = np.asarray(realized_return, dtype=np.float64)
    n = len(codes)
    if not (len(ts) == len(end) == len(pos) == len(ret) == n):
        raise ValueError("backtest inputs must have the same length")
    if not np.isin(pos, (-1.0, 0.0, 1.0)).all():
        raise ValueError("position must be -1, 0 or +1")
    active = (pos != 0) & np.isfinite(ret)
    if (active & (end < ts)).any():
        raise ValueError("horizon_end must not be before ts on trading rows")

    order = np.lexsort((np.arange(n), ts, codes))
    taken = np.zeros(n, dtype=bool)
    if n:
        taken[order] = _select_trades(codes[order], ts[order], end[order], active[order])
    idx = np.flatnonzero(taken)
    idx = idx[np.lexsort((codes[idx], ts[idx], end[idx]))]  # exit time, entry time, token

    if returns_are_net:
        net = ret[idx]
    else:
        net = pos[idx] * ret[idx] - 2.0 * (fee_bps + slippage_bps) / 1e4
    equity = np.cumprod(1.0 + risk_fraction * net)
    equity_ts = end[idx]

    trades = len(net)
    if trades:
        peak = np.maximum.accumulate(np.concatenate(([1.0], equity)))
        max_dd = float(np.max(1.0 - np.concatenate(([1.0], equity)) / peak))
        losses = float(-net[net < 0].sum())
        gains = float(net[net > 0].sum())
        metrics: dict[str, float | int | None] = {
            "trades": trades,
            "hit_rate": float(np.mean(net > 0)),
            "profit_factor": gains / losses if losses > 0 else None,
            "max_drawdown": max_dd,
            "sharpe": daily_sharpe(equity_ts, equity),
            "total_return": float(equity[-1] - 1.0),
            "avg_trade_return": float(np.mean(net)),
            "exposure": trades / n,
        }
    else:
        metrics = {
            "trades": 0, "hit_rate": None, "profit_factor": None, "max_drawdown": 0.0,
            "sharpe": None, "total_return": 0.0, "avg_trade_return": None,
            "exposure": 0.0 if n else None,
        }
    return BacktestResult(metrics=metrics, equity_ts_us=equity_ts, equity=equity)
