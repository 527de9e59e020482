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

import numpy as np
import polars as pl
from numba import njit

from alevor_assets.lib.intervals import DAY_US, duration, duration_us, interval_timedelta, interval_us
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


@register_label_strategy
@dataclass(frozen=True)
class PumpEvents(LabelStrategy):
    """Bars that overlap a labelled pump (and optionally dump) interval of their token.

    ``classes`` maps event types to label values; every other bar is 0. The default is the binary
    pump detector target; ``{pump: 1, dump: 2}`` gives the three-class variant.
    """

    name: ClassVar[str] = "pump_events"
    task: ClassVar[str] = "classification"
    detects_events: ClassVar[bool] = True
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


# ---------------------------------------------------------------------------------------------
# Compiled per-token kernels. Rows are in (token, ts) order; ``seg_end[i]`` is one past the last
# row of row i's token and ``seg_start[i]`` its first row. No kernel ever reads a row of another
# token, so a token's labels depend on that token's bars only.
# ---------------------------------------------------------------------------------------------


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
# Helpers shared by the strategies below.
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


def _check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number and (value >= 0 if allow_zero else value > 0)):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


# ---------------------------------------------------------------------------------------------
# Strategies.
# ---------------------------------------------------------------------------------------------


@register_label_strategy
@dataclass(frozen=True)
class HeuristicPumpDump(LabelStrategy):
    """Pump run-ups found from prices alone, for data without labelled events (classification).

    A bar is labelled 1 when both hold, else 0:

    - **rise**: the highest close of the token's bars that start in ``(ts, ts + window]`` (the
      peak; its first occurrence, at ``peak_ts``) is ``>= close * (1 + rise)``;
    - **dump**: the lowest close of the token's bars that start in ``(peak_ts, peak_ts +
      dump_window]`` is ``<= peak * (1 - drop)``.

    ``horizon_end = ts + window + dump_window + interval``.

    Parameters: ``rise`` (0.15, fraction), ``window`` (``"15m"``, run-up window), ``drop`` (0.10,
    fraction of the peak), ``dump_window`` (``"15m"``, window after the peak).
    """

    name: ClassVar[str] = "heuristic_pump_dump"
    task: ClassVar[str] = "classification"
    detects_events: ClassVar[bool] = True
    rise: float = 0.15
    window: str = "15m"
    drop: float = 0.10
    dump_window: str = "15m"

    def __post_init__(self) -> None:
        _check_positive("rise", self.rise)
        _check_positive("drop", self.drop)
        duration_us(self.window), duration_us(self.dump_window)

    def look_ahead(self, interval: str) -> timedelta:
        return interval_timedelta(interval) + duration(self.window) + duration(self.dump_window)

    def compute(self, ctx: LabelContext) -> pl.DataFrame:
        a = _arrays(ctx.bars)
        window, dump = duration_us(self.window), duration_us(self.dump_window)
        label = _pump_dump(a.col("close"), a.end(window), a.end(dump), a.seg_end, float(self.rise), float(self.drop))
        return a.output(label, a.ts + window + dump + interval_us(ctx.interval))


@register_label_strategy
@dataclass(frozen=True)
class EarlyPump(LabelStrategy):
    """``pump_events`` restricted to young tokens (classification).

    A bar gets the ``pump_events`` label (``classes`` maps event types to label values; a bar
    that overlaps an event of its token takes that value, every other bar 0) when the token's age
    at the bar, ``ts - created_at``, is ``<= max_age_hours``; bars of older tokens and of tokens
    whose ``created_at`` is unknown are not labelled (left out). ``horizon_end = ts + interval``.

    Parameters: ``max_age_hours`` (48.0), ``classes`` (``{"pump": 1}``).
    """

    name: ClassVar[str] = "early_pump"
    task: ClassVar[str] = "classification"
    detects_events: ClassVar[bool] = True
    needs_events: ClassVar[bool] = True
    max_age_hours: float = 48.0
    classes: dict[str, int] = dataclasses.field(default_factory=lambda: {"pump": 1})

    def __post_init__(self) -> None:
        _check_positive("max_age_hours", self.max_age_hours)

    def compute(self, ctx: LabelContext) -> pl.DataFrame:
        labelled = PumpEvents(classes=self.classes).compute(ctx)
        if ctx.tokens is None or "created_at" not in ctx.tokens.columns:
            return labelled.head(0)
        created = (
            ctx.tokens.select("token", pl.col("created_at").cast(UTC_US))
            .drop_nulls("created_at")
            .group_by("token")
            .agg(pl.col("created_at").min())
        )
        max_age_us = int(round(self.max_age_hours * 3_600_000_000))
        age = pl.col("ts").dt.epoch("us") - pl.col("created_at").dt.epoch("us")
        return (
            labelled.join(created, on="token", how="inner", maintain_order="left")
            .filter(age <= max_age_us)
            .drop("created_at")
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
