"""Compiled per-token kernels, and the bars as arrays for them.

Rows are in (token, ts) order; ``seg_end[i]`` is one past the last row of row i's token and
``seg_start[i]`` its first row. No kernel ever reads a row of another token, so a token's labels
depend on that token's bars only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numba import njit

from alevor_assets.lib.intervals import DAY_US
from alevor_assets.lib.labels.base import REALIZED_RETURN
from alevor_assets.lib.schemas import UTC_US


@njit(cache=True, nogil=True)
def _window_end(ts, seg_end, span):  # pragma: no cover - compiled
    """Last row ``j >= i`` of row i's token with ``ts[j] <= ts[i] + span``; the next bars of row i
    (those starting in ``(ts, ts + span]``) are rows ``i + 1 .. end[i]`` (none when end == i)."""
    n = len(ts)
    out = np.empty(n, np.int64)
    j = 0
    for i in range(n):
        if j < i:
            j = i
        lim = ts[i] + span
        stop = seg_end[i]
        while j + 1 < stop and ts[j + 1] <= lim:
            j += 1
        out[i] = j
    return out


@njit(cache=True, nogil=True)
def _forward_arg_extreme(x, end, seg_end, sign):  # pragma: no cover - compiled
    """Row of the largest (sign=1) or smallest (sign=-1) ``x`` over rows ``i+1 .. end[i]``, the
    first one on ties; -1 when the window is empty. A monotonic deque per token: O(n)."""
    n = len(x)
    out = np.full(n, -1, np.int64)
    buf = np.empty(n, np.int64)
    i = 0
    while i < n:
        stop = seg_end[i]
        head = 0
        tail = 0
        nxt = i + 1
        for k in range(i, stop):
            while nxt <= end[k]:
                v = sign * x[nxt]
                # Keep earlier equal values: the front is the first occurrence of the extreme.
                while tail > head and sign * x[buf[tail - 1]] < v:
                    tail -= 1
                buf[tail] = nxt
                tail += 1
                nxt += 1
            while tail > head and buf[head] <= k:
                head += 1
            if tail > head:
                out[k] = buf[head]
        i = stop
    return out


@njit(cache=True, nogil=True)
def _pump_dump(close, end_rise, end_dump, seg_end, rise, drop):  # pragma: no cover - compiled
    peak = _forward_arg_extreme(close, end_rise, seg_end, 1.0)
    trough = _forward_arg_extreme(close, end_dump, seg_end, -1.0)
    n = len(close)
    out = np.zeros(n, np.int64)
    for i in range(n):
        p = peak[i]
        if p < 0 or not close[p] >= close[i] * (1.0 + rise):
            continue
        q = trough[p]
        if q >= 0 and close[q] <= close[p] * (1.0 - drop):
            out[i] = 1
    return out


@njit(cache=True, nogil=True)
def _blocks(ts, seg_start, block_us):  # pragma: no cover - compiled
    """Blocks of a token's rows: ``block_us`` wide, aligned to each UTC day's start (and cut at
    every day boundary). Returns each row's block first and last row."""
    n = len(ts)
    first = np.empty(n, np.int64)
    last = np.empty(n, np.int64)
    f = 0
    prev_day = -1
    prev_k = -1
    for j in range(n):
        day = ts[j] // DAY_US
        k = (ts[j] - day * DAY_US) // block_us
        if j == seg_start[j] or day != prev_day or k != prev_k:
            f = j
        first[j] = f
        prev_day = day
        prev_k = k
    for j in range(n - 1, -1, -1):
        last[j] = j if (j == n - 1 or first[j + 1] != first[j]) else last[j + 1]
    return first, last


@njit(cache=True, nogil=True)
def _block_prefix(x, first):  # pragma: no cover - compiled
    out = np.empty(len(x))
    acc = 0.0
    for j in range(len(x)):
        if first[j] == j:
            acc = 0.0
        acc += x[j]
        out[j] = acc
    return out


@njit(cache=True, nogil=True)
def _range_sum(prefix, first, last, a, e):  # pragma: no cover - compiled
    """Sum of rows a..e (one token, a <= e) from block prefix sums. The result depends only on
    the blocks' rows, never on where the data starts (blocks restart at every UTC day), so a day
    computed with its look-ahead equals the same rows of a longer batch bit for bit."""
    before = prefix[a - 1] if a - 1 >= first[a] else 0.0
    if first[a] == first[e]:
        return prefix[e] - before
    total = prefix[last[a]] - before
    k = last[a] + 1
    while first[k] != first[e]:
        total += prefix[last[k]]
        k = last[k] + 1
    return total + prefix[e]


@njit(cache=True, nogil=True)
def _regime(ts, close, seg_start, seg_end, horizon_us, eff_min, move_min, vol_min):  # pragma: no cover - compiled
    n = len(close)
    end = _window_end(ts, seg_end, horizon_us)
    abs_r = np.zeros(n)
    lr = np.zeros(n)
    lr2 = np.zeros(n)
    for j in range(n):
        if j > seg_start[j]:
            ratio = close[j] / close[j - 1]
            abs_r[j] = abs(ratio - 1.0)
            lr[j] = np.log(ratio)
            lr2[j] = lr[j] * lr[j]
    first, last = _blocks(ts, seg_start, max(horizon_us, 1))
    p_abs = _block_prefix(abs_r, first)
    p_lr = _block_prefix(lr, first)
    p_lr2 = _block_prefix(lr2, first)
    out = np.zeros(n, np.int64)
    for i in range(n):
        e = end[i]
        m = e - i
        if m < 3:
            continue  # NO_TRADE
        move = abs(close[e] / close[i] - 1.0)
        path = _range_sum(p_abs, first, last, i + 1, e)
        efficiency = move / path if path > 0.0 else 0.0
        mean = _range_sum(p_lr, first, last, i + 1, e) / m
        var = _range_sum(p_lr2, first, last, i + 1, e) / m - mean * mean
        vol = np.sqrt(var * m) if var > 0.0 else 0.0
        if vol < vol_min:
            continue  # NO_TRADE
        out[i] = 2 if (efficiency >= eff_min and move >= move_min) else 1
    return out


@njit(cache=True, nogil=True)
def _ewm_std_log_returns(close, seg_start, span):  # pragma: no cover - compiled
    """pandas ``Series(log(close).diff()).ewm(span=span, adjust=False).std()`` per token (bias
    corrected, NaN until two returns): sigma of a bar uses returns up to and including it."""
    n = len(close)
    out = np.full(n, np.nan)
    alpha = 2.0 / (span + 1.0)
    old_factor = 1.0 - alpha
    mean = 0.0
    cov = 0.0
    sum_wt = 1.0
    sum_wt2 = 1.0
    old_wt = 1.0
    for i in range(n):
        s = seg_start[i]
        if i == s:
            continue  # no return for a token's first bar
        x = np.log(close[i] / close[i - 1])
        if i == s + 1:
            mean = x
            cov = 0.0
            sum_wt = 1.0
            sum_wt2 = 1.0
            old_wt = 1.0
        else:
            sum_wt *= old_factor
            sum_wt2 *= old_factor * old_factor
            old_wt *= old_factor
            old_mean = mean
            if mean != x:
                mean = (old_wt * old_mean + alpha * x) / (old_wt + alpha)
            cov = (old_wt * (cov + (old_mean - mean) * (old_mean - mean)) + alpha * (x - mean) * (x - mean)) / (
                old_wt + alpha
            )
            sum_wt += alpha
            sum_wt2 += alpha * alpha
            sum_wt /= old_wt + alpha
            sum_wt2 /= (old_wt + alpha) * (old_wt + alpha)
            old_wt = 1.0
        numerator = sum_wt * sum_wt
        denominator = numerator - sum_wt2
        if denominator > 0.0:
            var = numerator / denominator * cov
            out[i] = np.sqrt(var) if var >= 0.0 else np.nan
    return out


@njit(cache=True, nogil=True)
def _triple_barrier(ts, close, high, low, sigma, end, profit_take, stop_loss, step_us, horizon_us):  # pragma: no cover - compiled
    n = len(close)
    label = np.zeros(n, np.int64)
    valid = np.zeros(n, np.bool_)
    realized = np.zeros(n)
    horizon_end = np.empty(n, np.int64)
    for i in range(n):
        s = sigma[i]
        horizon_end[i] = ts[i] + step_us + horizon_us
        if not s > 0.0:  # NaN (warm-up) or zero volatility
            continue
        valid[i] = True
        c0 = close[i]
        upper = c0 * np.exp(profit_take * s)
        lower = c0 * np.exp(-stop_loss * s)
        e = end[i]
        touched = False
        for j in range(i + 1, e + 1):
            if low[j] <= lower:  # checked first: both in one bar counts as the stop
                label[i] = -1
                realized[i] = -stop_loss * s
                horizon_end[i] = ts[j] + step_us
                touched = True
                break
            if high[j] >= upper:
                label[i] = 1
                realized[i] = profit_take * s
                horizon_end[i] = ts[j] + step_us
                touched = True
                break
        if not touched and e > i:
            realized[i] = np.log(close[e] / c0)
    return label, valid, realized, horizon_end


@njit(cache=True, nogil=True)
def _side_sign(close, seg_start, lookback):  # pragma: no cover - compiled
    """sign(close / close ``lookback`` bars earlier - 1) within the token; 0 where undefined."""
    n = len(close)
    out = np.zeros(n, np.int64)
    for i in range(n):
        if i - lookback >= seg_start[i]:
            r = close[i] / close[i - lookback] - 1.0
            out[i] = 1 if r > 0.0 else (-1 if r < 0.0 else 0)
    return out


@njit(cache=True, nogil=True)
def _friction(ts, close, vwap, quote_volume, end, order_quote, participation, step_us):  # pragma: no cover - compiled
    n = len(close)
    price = np.full(n, np.nan)
    horizon_end = np.zeros(n, np.int64)
    for i in range(n):
        remaining = order_quote
        quote = 0.0
        weighted = 0.0
        for j in range(i + 1, end[i] + 1):
            cap = participation * quote_volume[j]
            if not (cap > 0.0) or not (vwap[j] > 0.0):
                continue
            take = remaining if cap >= remaining else cap
            quote += take
            weighted += take * vwap[j]
            if cap >= remaining:
                price[i] = weighted / quote
                horizon_end[i] = ts[j] + step_us
                break
            remaining -= cap
    return price, horizon_end


# ---------------------------------------------------------------------------------------------
# The bars as arrays: what the strategies hand to the kernels and how they turn results back
# into rows.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Arrays:
    frame: pl.DataFrame  # the bars, sorted by token and ts
    ts: np.ndarray
    seg_start: np.ndarray
    seg_end: np.ndarray

    def col(self, name: str) -> np.ndarray:
        return self.frame[name].cast(pl.Float64).to_numpy().astype(np.float64, copy=False)

    def end(self, span_us: int) -> np.ndarray:
        return _window_end(self.ts, self.seg_end, span_us)

    def output(self, label: np.ndarray, horizon_end: np.ndarray, valid: np.ndarray | None = None,
               realized: np.ndarray | None = None) -> pl.DataFrame:
        cols = [
            pl.Series("label", label),
            pl.Series("horizon_end", horizon_end, dtype=pl.Int64).cast(UTC_US),
        ]
        if realized is not None:
            cols.append(pl.Series(REALIZED_RETURN, realized, dtype=pl.Float64))
        out = self.frame.select("token", "ts").with_columns(cols)
        return out.filter(pl.Series(valid)) if valid is not None else out


def _arrays(bars: pl.DataFrame) -> _Arrays:
    frame = bars.sort("token", "ts", maintain_order=True)
    tokens = frame["token"]
    new = (tokens != tokens.shift(1)).fill_null(True).to_numpy()
    n = frame.height
    idx = np.arange(n, dtype=np.int64)
    starts = np.flatnonzero(new).astype(np.int64)
    ends = np.append(starts[1:], n).astype(np.int64)
    seg_start = np.repeat(starts, ends - starts) if n else idx
    seg_end = np.repeat(ends, ends - starts) if n else idx
    ts = frame["ts"].dt.epoch("us").to_numpy().astype(np.int64, copy=False)
    return _Arrays(frame, ts, seg_start, seg_end)
