"""Feature snapshots from bars.

Every feature is computed per token over that token's stored bars in time order, and only from
bars at or before its own timestamp. Standard indicators follow TA-Lib's definitions exactly,
including how they seed (a simple mean of the first ``n`` values, then recursive smoothing), so
after warm-up they equal TA-Lib on the same series. Because only buckets with trades are stored,
rates divide by the seconds that really elapsed since the previous bar
(:func:`adjust_features_for_time_interval`), so a bar after a ten-minute gap never looks like a
two-second move.

The table of features, with units and windows, is in README ("Features"); ``FEATURE_DOCS`` below
is its source and a test keeps the two in sync.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from alevor_assets.lib.intervals import interval_seconds, interval_us
from alevor_assets.lib.schemas import UTC_US

KEYS = ["token", "interval", "ts"]
HORIZONS = (1, 5, 15, 60)


@dataclass(frozen=True)
class FeatureDoc:
    name: str
    definition: str
    unit: str
    window: str


FEATURE_DOCS: tuple[FeatureDoc, ...] = (
    FeatureDoc("gap_seconds", "seconds since the token's previous bar started (null for its first bar)", "s", "1 bar"),
    FeatureDoc("elapsed_seconds", "gap_seconds, or the interval length for a token's first bar; the time base of every rate", "s", "1 bar"),
    *(FeatureDoc(f"return_{h}", f"close / close {h} bar(s) earlier - 1", "ratio", f"{h} bars") for h in HORIZONS),
    *(FeatureDoc(f"log_return_{h}", f"ln(close / close {h} bar(s) earlier)", "log", f"{h} bars") for h in HORIZONS),
    *(FeatureDoc(f"realized_vol_{h}", f"sqrt of the sum of squared 1-bar log returns over the last {h} bars", "log", f"{h} bars") for h in HORIZONS[1:]),
    FeatureDoc("price_velocity", "log_return_1 / elapsed_seconds", "log/s", "1 bar"),
    FeatureDoc("price_acceleration", "(price_velocity - previous price_velocity) / elapsed_seconds", "log/s²", "2 bars"),
    FeatureDoc("volume_rate", "volume / elapsed_seconds", "base units/s", "1 bar"),
    FeatureDoc("quote_volume_rate", "quote_volume / elapsed_seconds", "quote units/s", "1 bar"),
    FeatureDoc("trade_rate", "trade_count / elapsed_seconds", "trades/s", "1 bar"),
    *(FeatureDoc(f"volume_zscore_{h}", f"(volume_rate - mean) / population std of volume_rate over the last {h} bars", "σ", f"{h} bars") for h in HORIZONS[2:]),
    FeatureDoc("volume_ratio", "volume_rate / mean volume_rate of the previous 20 bars", "ratio", "21 bars"),
    FeatureDoc("buy_sell_imbalance", "(buy_volume - sell_volume) / volume", "ratio in [-1, 1]", "1 bar"),
    FeatureDoc("vwap_distance", "close / vwap - 1", "ratio", "1 bar"),
    FeatureDoc("hl_range", "(high - low) / close", "ratio", "1 bar"),
    FeatureDoc("rsi_14", "RSI, Wilder smoothing (TA-Lib RSI, 14); 0 when there was no move at all", "0-100", "14 bars + warm-up"),
    FeatureDoc("macd", "EMA12(close) - EMA26(close), EMAs with k = 2/(n+1) seeded as TA-Lib MACD does", "price", "34 bars + warm-up"),
    FeatureDoc("macd_signal", "EMA9 of macd (TA-Lib MACD signal)", "price", "34 bars + warm-up"),
    FeatureDoc("macd_hist", "macd - macd_signal", "price", "34 bars + warm-up"),
    FeatureDoc("bb_middle", "SMA20(close) (TA-Lib BBANDS middle)", "price", "20 bars"),
    FeatureDoc("bb_upper", "bb_middle + 2 × population std of the last 20 closes", "price", "20 bars"),
    FeatureDoc("bb_lower", "bb_middle - 2 × population std of the last 20 closes", "price", "20 bars"),
    FeatureDoc("atr_14", "average true range, Wilder smoothing (TA-Lib ATR, 14)", "price", "15 bars + warm-up"),
    FeatureDoc("macd_pct", "macd / close (scale-free, comparable across tokens)", "ratio", "34 bars + warm-up"),
    FeatureDoc("macd_hist_pct", "macd_hist / close", "ratio", "34 bars + warm-up"),
    FeatureDoc("bb_width", "(bb_upper - bb_lower) / bb_middle", "ratio", "20 bars"),
    FeatureDoc("bb_percent_b", "(close - bb_lower) / (bb_upper - bb_lower); null when the band is flat", "ratio", "20 bars"),
    FeatureDoc("atr_pct", "atr_14 / close", "ratio", "15 bars + warm-up"),
    FeatureDoc("momentum_short", "close / SMA10(close) - 1", "ratio", "10 bars"),
    FeatureDoc("momentum_long", "close / SMA50(close) - 1", "ratio", "50 bars"),
    FeatureDoc("composite_score", "mean of clipped z-scores: return_5 / (realized_vol_15 · sqrt(5/15)), volume_zscore_15, 3 · buy_sell_imbalance; each clipped to [-5, 5]", "σ", "15 bars"),
    FeatureDoc("token_age_hours", "hours since the token's created_at (null when the source does not know it)", "h", "-"),
)


def feature_names() -> list[str]:
    return [d.name for d in FEATURE_DOCS]


def adjust_features_for_time_interval(bars: pl.LazyFrame, interval: str) -> pl.LazyFrame:
    """Add the time base every rate uses, so features mean the same at any interval.

    Adds ``gap_seconds`` (time since the token's previous stored bar, null for the first) and
    ``elapsed_seconds`` (``gap_seconds``, or the interval length for a first bar). Rates are then
    per elapsed second: a 2-second bar that follows a ten-minute silence has its return and
    volume spread over ten minutes, and a 1-minute bar's rate is comparable to a 2-second bar's.
    Windows of the standard indicators stay in bars, as TA-Lib defines them.
    """
    step = interval_seconds(interval)
    gap = (pl.col("ts") - pl.col("ts").shift(1)).over("token").dt.total_microseconds() / 1e6
    return bars.with_columns(gap_seconds=gap).with_columns(
        elapsed_seconds=pl.col("gap_seconds").fill_null(step)
    )


def _by_token(expr: pl.Expr) -> pl.Expr:
    return expr.over("token")


def _ema_seeded(values: pl.Expr, period: int, seed_index: int, alpha: float) -> pl.Expr:
    """Recursive smoothing seeded like TA-Lib: the first output, at position ``seed_index`` of the
    token's series, is the mean of the ``period`` values ending there; before it, null."""
    pos = pl.int_range(pl.len())
    seeded = (
        pl.when(pos < seed_index).then(None)
        .when(pos == seed_index).then(values.rolling_mean(period))
        .otherwise(values)
    )
    return seeded.ewm_mean(alpha=alpha, adjust=False, ignore_nulls=True, min_samples=1)


def _rsi(close: pl.Expr, n: int = 14) -> pl.Expr:
    diff = close.diff()
    gain = pl.when(diff > 0).then(diff).otherwise(0.0)
    loss = pl.when(diff < 0).then(-diff).otherwise(0.0)
    pos = pl.int_range(pl.len())
    # The first difference is undefined; keep it out of the seed window like TA-Lib does.
    gain = pl.when(pos == 0).then(None).otherwise(gain)
    loss = pl.when(pos == 0).then(None).otherwise(loss)
    avg_gain = _ema_seeded(gain, n, n, 1.0 / n)
    avg_loss = _ema_seeded(loss, n, n, 1.0 / n)
    total = avg_gain + avg_loss
    return pl.when(total > 0).then(100.0 * avg_gain / total).when(total == 0).then(0.0)


def _atr(high: pl.Expr, low: pl.Expr, close: pl.Expr, n: int = 14) -> pl.Expr:
    prev = close.shift(1)
    tr = pl.max_horizontal(high - low, (high - prev).abs(), (low - prev).abs())
    tr = pl.when(prev.is_null()).then(None).otherwise(tr)
    return _ema_seeded(tr, n, n, 1.0 / n)


def _macd(close: pl.Expr, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[pl.Expr, pl.Expr]:
    # TA-Lib starts both EMAs at the slow EMA's first output (position slow-1); the fast one is
    # seeded with the mean of the `fast` closes ending there.
    start = slow - 1
    ema_fast = _ema_seeded(close, fast, start, 2.0 / (fast + 1))
    ema_slow = _ema_seeded(close, slow, start, 2.0 / (slow + 1))
    macd = ema_fast - ema_slow
    sig = _ema_seeded(macd, signal, start + signal - 1, 2.0 / (signal + 1))
    first = start + signal - 1
    pos = pl.int_range(pl.len())
    return pl.when(pos >= first).then(macd), sig


def compute_features(
    bars: pl.DataFrame | pl.LazyFrame,
    interval: str,
    *,
    tokens: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Feature snapshot for every bar of ``interval`` in ``bars`` (Polars in, Polars out).

    ``bars`` has the ``bars`` columns; rows of other intervals are ignored. ``tokens`` (with
    ``token`` and ``created_at``) adds ``token_age_hours``. The output has ``token, interval, ts``
    and the columns listed in ``FEATURE_DOCS``, sorted by token and ts. Indicators need a warm-up
    (see the table): pass earlier bars too and filter the result when you need exact values for a
    later span.
    """
    lf = bars.lazy() if isinstance(bars, pl.DataFrame) else bars
    interval_us(interval)  # validates
    lf = lf.filter(pl.col("interval") == interval).sort("token", "ts")
    lf = adjust_features_for_time_interval(lf, interval)
    c, h, lo = pl.col("close"), pl.col("high"), pl.col("low")
    log_ret_1 = (c / c.shift(1)).log()
    cols: dict[str, pl.Expr] = {}
    for k in HORIZONS:
        cols[f"return_{k}"] = c / c.shift(k) - 1.0
        cols[f"log_return_{k}"] = (c / c.shift(k)).log()
    for k in HORIZONS[1:]:
        cols[f"realized_vol_{k}"] = (log_ret_1**2).rolling_sum(k).sqrt()
    elapsed = pl.col("elapsed_seconds")
    velocity = log_ret_1 / elapsed
    cols["price_velocity"] = velocity
    cols["price_acceleration"] = (velocity - velocity.shift(1)) / elapsed
    volume_rate = pl.col("volume") / elapsed
    cols["volume_rate"] = volume_rate
    cols["quote_volume_rate"] = pl.col("quote_volume") / elapsed
    cols["trade_rate"] = pl.col("trade_count").cast(pl.Float64) / elapsed
    for k in HORIZONS[2:]:
        mean = volume_rate.rolling_mean(k)
        std = volume_rate.rolling_std(k, ddof=0)
        cols[f"volume_zscore_{k}"] = pl.when(std > 0).then((volume_rate - mean) / std).otherwise(0.0)
    prev_mean = volume_rate.shift(1).rolling_mean(20)
    cols["volume_ratio"] = pl.when(prev_mean > 0).then(volume_rate / prev_mean)
    cols["buy_sell_imbalance"] = (pl.col("buy_volume") - pl.col("sell_volume")) / pl.col("volume")
    cols["vwap_distance"] = c / pl.col("vwap") - 1.0
    cols["hl_range"] = (h - lo) / c
    cols["rsi_14"] = _rsi(c, 14)
    macd, signal = _macd(c)
    cols["macd"] = macd
    cols["macd_signal"] = signal
    cols["macd_hist"] = macd - signal
    mid = c.rolling_mean(20)
    sd = c.rolling_std(20, ddof=0)
    cols["bb_middle"] = mid
    cols["bb_upper"] = mid + 2.0 * sd
    cols["bb_lower"] = mid - 2.0 * sd
    cols["atr_14"] = _atr(h, lo, c, 14)
    cols["momentum_short"] = c / c.rolling_mean(10) - 1.0
    cols["momentum_long"] = c / c.rolling_mean(50) - 1.0
    out = lf.with_columns(**{name: _by_token(expr) for name, expr in cols.items()})
    out = out.with_columns(
        macd_pct=pl.col("macd") / pl.col("close"),
        macd_hist_pct=pl.col("macd_hist") / pl.col("close"),
        bb_width=(pl.col("bb_upper") - pl.col("bb_lower")) / pl.col("bb_middle"),
        bb_percent_b=pl.when(pl.col("bb_upper") > pl.col("bb_lower")).then(
            (pl.col("close") - pl.col("bb_lower")) / (pl.col("bb_upper") - pl.col("bb_lower"))
        ),
        atr_pct=pl.col("atr_14") / pl.col("close"),
    )
    ret_z = (pl.col("return_5") / (pl.col("realized_vol_15") * (5 / 15) ** 0.5)).clip(-5, 5)
    out = out.with_columns(
        composite_score=pl.mean_horizontal(
            ret_z.fill_nan(None),
            pl.col("volume_zscore_15").clip(-5, 5),
            (3.0 * pl.col("buy_sell_imbalance")).clip(-5, 5),
        )
    )
    if tokens is not None and tokens.height:
        created = tokens.select("token", pl.col("created_at").cast(UTC_US)).unique("token")
        out = out.join(created.lazy(), on="token", how="left", maintain_order="left").with_columns(
            token_age_hours=(pl.col("ts") - pl.col("created_at")).dt.total_microseconds() / 3.6e9
        )
    else:
        out = out.with_columns(token_age_hours=pl.lit(None, dtype=pl.Float64))
    names = feature_names()
    result = out.select(
        *KEYS, *[pl.col(n).cast(pl.Float64) for n in names]
    ).collect()
    # Division by zero cannot happen for valid bars (prices and volumes > 0), but guard anyway:
    # a feature is either a finite number or null.
    return result.with_columns(
        [pl.when(pl.col(n).is_finite()).then(pl.col(n)) for n in names]
    )


def restrict_to_window(features: pl.DataFrame, start_us: int, end_us: int) -> pl.DataFrame:
    """Rows with ``start <= ts < end`` (epoch microseconds)."""
    ts = pl.col("ts").dt.epoch("us")
    return features.filter((ts >= start_us) & (ts < end_us))


def select_features(features: pl.DataFrame, names: Sequence[str] | None) -> pl.DataFrame:
    if names is None:
        return features
    missing = [n for n in names if n not in features.columns]
    if missing:
        raise ValueError(f"unknown features {missing}; available: {features.columns[3:]}")
    return features.select(*KEYS, *names)


def feature_units() -> Mapping[str, str]:
    return {d.name: d.unit for d in FEATURE_DOCS}
