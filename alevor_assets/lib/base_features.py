"""The base feature families of one interval, computed by compiled kernels per series.

Per bar and bar-count windows (returns, volatility, rates, order flow, the TA-Lib indicators) and
wall-clock span windows, from the bars alone: what :mod:`alevor_assets.lib.features` computes for
the bars of the asked interval and, for multi-timeframe context, of each coarser interval. A series
(one token, restarted after a long silence) can resume from a later row with the recursive values
kept there (``resume``), which is how the live path and day-by-day builds continue the continuous
series exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
import polars as pl

from alevor_assets.lib import feature_kernels as fk
from alevor_assets.lib.cores import in_threads, usable_cores
from alevor_assets.lib.feature_catalog import HORIZONS
from alevor_assets.lib.intervals import duration_us, interval_seconds, interval_us
from alevor_assets.lib.trade_features import SEGMENT, _attach_segments, _finite, resumed_heads, series_segments

def adjust_features_for_time_interval(
    bars: pl.DataFrame, interval: str, spans: Sequence[str] = (), max_gap_days: int | None = None
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Put a bar series on the clock, so features mean the same at any interval.

    Returns the bars in (token, ts) order with ``gap_seconds`` (time since the token's previous
    stored bar, null for its first) and ``elapsed_seconds`` (``gap_seconds``, or the interval for a
    first bar), the time base of every rate: a 2-second bar after a ten-minute silence spreads its
    return and volume over ten minutes, and a 1-minute bar's rate compares with a 2-second bar's.
    With ``max_gap_days``, a bar after that many UTC days without a bar of the token starts a new
    series (``_seg``): it is a first bar again. Also returns, for each wall-clock span, the window
    in microseconds it becomes at this interval: a span shorter than one bar is widened to the bar
    (a 30 s window on 1 h bars is the bar itself). Bar-count windows of the standard indicators
    stay in bars, as TA-Lib defines them.
    """
    step = interval_seconds(interval)
    ordered = _ordered(bars)
    if SEGMENT not in ordered.columns:
        gap_days = max_gap_days if max_gap_days is not None else _NO_GAP
        ordered = ordered.with_columns(_attach_segments(ordered, series_segments([ordered], gap_days)))
    # In NumPy: the same microsecond differences over 1e6, a tenth of the time of the Polars
    # expression (0.39 s for 4.65 M bars), which the feature kernels wait for.
    seg, ts = ordered[SEGMENT].to_numpy(), ordered["ts"].dt.epoch("us").to_numpy()
    first = np.ones(len(ts), dtype=np.bool_)
    np.not_equal(seg[1:], seg[:-1], out=first[1:])
    gap = np.empty(len(ts))
    np.divide(ts[1:] - ts[:-1], 1e6, out=gap[1:])
    gap[first] = np.nan  # a series' first row (row 0 included) has no gap
    framed = ordered.with_columns(
        pl.Series("gap_seconds", gap, nan_to_null=True), pl.Series("elapsed_seconds", np.where(first, float(step), gap))
    )
    windows = {s: max(duration_us(s), interval_us(interval)) for s in spans}
    return framed, windows


_NO_GAP = 1 << 40  # a max_gap that never restarts a series


def _ordered(bars: pl.DataFrame) -> pl.DataFrame:
    """Rows in (token, ts) order; cheap when they already are or when days were concatenated."""
    if SEGMENT in bars.columns and bars.height > 1:
        # Series ids increase with token and day, so (series, ts) order is (token, ts) order,
        # and checking it compares integers instead of ranking the token names.
        seg, ts = bars[SEGMENT].to_numpy(), bars["ts"].dt.epoch("us").to_numpy()
        if np.all((seg[1:] > seg[:-1]) | ((seg[1:] == seg[:-1]) & (ts[1:] > ts[:-1]))):
            return bars
    tokens = bars["token"].unique().sort()
    codes = bars["token"].cast(pl.Enum(tokens)).to_physical().to_numpy()
    ts = bars["ts"].dt.epoch("us").to_numpy()
    if len(ts) < 2 or np.all((codes[1:] > codes[:-1]) | ((codes[1:] == codes[:-1]) & (ts[1:] > ts[:-1]))):
        return bars
    by_token = np.argsort(codes, kind="stable")
    ts_sorted, codes_sorted = ts[by_token], codes[by_token]
    same = codes_sorted[1:] == codes_sorted[:-1]
    if np.all(~same | (ts_sorted[1:] > ts_sorted[:-1])):
        return bars[by_token]  # days stacked in time order: a stable token sort suffices
    return bars[np.lexsort((ts, codes))]


# The recursive (EMA) indicators of a series, in the order _base_features computes them: what a
# series continued from a later row needs (see SeriesState).
EMA_STATE = ("_avg_gain", "_avg_loss", "_ema_fast", "_ema_slow", "_ema_signal", "_atr")
POS = "_pos"
# Rows behind a resumed series' first new row whose values that row's bar-count windows read,
# directly or through a one-row difference (return_60, realized_vol_60 and volume_zscore_60 read
# 61); twice that, so a resume never reaches back into the EMAs' seeding (position 33).
RESUME_MARGIN_ROWS = 2 * max(HORIZONS) + 8


def _base_features(bars: pl.DataFrame, interval: str, spans: Sequence[str], resume: pl.DataFrame | None = None,
                   keep_state: bool = False, wanted: Collection[str] | None = None) -> pl.DataFrame:
    """The per-bar, bar-count and wall-clock families for one interval, computed per series (a
    token, restarted after a long silence) by compiled kernels; ``token, interval, ts, close,
    _seg`` and the features (only those in ``wanted``, if given), in (token, ts) order. ``bars``
    carries ``_seg``. ``resume`` (``token, ts, _pos`` and :data:`EMA_STATE`): series whose first
    row passed is that row of a longer series, at that position and with those recursive values;
    ``keep_state`` adds ``_pos`` and :data:`EMA_STATE` to the output."""
    b = _ordered(bars).rechunk()  # see features_from_tables: slices of one chunk copy nothing
    # Series are independent: big frames are cut at series starts, one part per core.
    cores = usable_cores()
    parts = in_threads(lambda rows: _base_part(b.slice(rows[0], rows[1] - rows[0]), interval, spans, resume, keep_state, wanted),
                       _series_parts(b[SEGMENT].to_numpy(), cores), cores)
    return parts[0] if len(parts) == 1 else pl.concat(parts)


# Below this many rows per part, threads cost more than they save (the live path's ticks).
_MIN_PART_ROWS = 250_000


def _series_parts(seg: np.ndarray, cores: int) -> list[tuple[int, int]]:
    """Up to ``cores`` row ranges of about equal size, each holding whole series (``seg``: the
    series id of each row, non-decreasing)."""
    n = len(seg)
    k = min(cores, n // _MIN_PART_ROWS)
    if k <= 1:
        return [(0, n)]
    cuts = sorted({0, *(int(np.searchsorted(seg, seg[n * q // k])) for q in range(1, k))})
    return list(zip(cuts, [*cuts[1:], n]))


def _base_part(bars: pl.DataFrame, interval: str, spans: Sequence[str], resume: pl.DataFrame | None, keep_state: bool,
               wanted: Collection[str] | None) -> pl.DataFrame:
    """:func:`_base_features` of whole series."""
    b, windows = adjust_features_for_time_interval(bars, interval, spans)
    n = b.height
    start = fk.segment_starts(b[SEGMENT].to_numpy() if n else np.zeros(0, np.int64))
    offset, init = _resumed_offsets(b, start, resume)
    pos = np.arange(n) - start + offset[start]
    ts = b["ts"].dt.epoch("us").to_numpy()
    values = _Lazy(_base_recipes(b, start, pos, init, ts, windows))
    names = [name for name in values.recipes if not name.startswith("_") and name not in _BAR_COLUMNS
             and (wanted is None or name in wanted)]
    with np.errstate(divide="ignore", invalid="ignore"):
        f = {name: values[name] for name in names}
        ema = {k: values[k] for k in EMA_STATE} if keep_state else {}
    out = b.select("token", "interval", "ts", "close", SEGMENT)
    # A ratio with a zero denominator has no value: null, never inf or NaN.
    out = out.with_columns([pl.Series(name, _finite(v), dtype=pl.Float64, nan_to_null=True) for name, v in f.items()])
    if keep_state:
        out = out.with_columns(pl.Series(POS, pos, dtype=pl.Int64), *[pl.Series(k, v, dtype=pl.Float64) for k, v in ema.items()])
    return out


_BAR_COLUMNS = ("high", "low", "close", "volume", "quote_volume", "buy_volume", "sell_volume", "trade_count", "vwap")


class _Lazy(dict):
    """Arrays computed on first use, each by its recipe (which reads others): a caller that asks
    for a few features computes only what those need."""

    def __init__(self, recipes: dict[str, Callable[[_Lazy], Any]]) -> None:
        super().__init__()
        self.recipes = recipes

    def __missing__(self, name: str) -> Any:
        value = self[name] = self.recipes[name](self)
        return value


def _base_recipes(b: pl.DataFrame, start: np.ndarray, pos: np.ndarray, init: dict[str, np.ndarray], ts: np.ndarray,
                  windows: dict[str, int]) -> dict[str, Callable[[_Lazy], Any]]:
    """How each base feature (and the intermediate ``_*`` arrays and bar columns they read) is
    computed, in output order; ``v`` is the :class:`_Lazy` of the computed ones."""
    r: dict[str, Callable[[_Lazy], Any]] = {}
    for name in _BAR_COLUMNS:
        r[name] = lambda v, name=name: b[name].cast(pl.Float64).to_numpy()
    r["gap_seconds"] = lambda v: b["gap_seconds"].cast(pl.Float64).to_numpy()
    r["elapsed_seconds"] = lambda v: b["elapsed_seconds"].to_numpy()
    r["_prev_c"] = lambda v: fk.shifted(v["close"], start, 1)
    for k in HORIZONS:
        r[f"_past_{k}"] = (lambda v: v["_prev_c"]) if k == 1 else (lambda v, k=k: fk.shifted(v["close"], start, k))
        r[f"return_{k}"] = lambda v, k=k: v["close"] / v[f"_past_{k}"] - 1.0
        r[f"log_return_{k}"] = lambda v, k=k: np.log(v["close"] / v[f"_past_{k}"])
    r["_lr2"] = lambda v: v["log_return_1"] ** 2
    for k in HORIZONS[1:]:
        r[f"realized_vol_{k}"] = lambda v, k=k: np.sqrt(fk.rolling_sum(v["_lr2"], start, k))
    r["price_velocity"] = lambda v: v["log_return_1"] / v["elapsed_seconds"]
    r["price_acceleration"] = lambda v: (v["price_velocity"] - fk.shifted(v["price_velocity"], start, 1)) / v["elapsed_seconds"]
    r["volume_rate"] = lambda v: v["volume"] / v["elapsed_seconds"]
    r["quote_volume_rate"] = lambda v: v["quote_volume"] / v["elapsed_seconds"]
    r["trade_rate"] = lambda v: v["trade_count"] / v["elapsed_seconds"]
    for k in HORIZONS[2:]:
        r[f"volume_zscore_{k}"] = lambda v, k=k: _zscore(v["volume_rate"], *fk.rolling_mean_std(v["volume_rate"], start, k))
    r["volume_ratio"] = lambda v: _ratio_to_positive(v["volume_rate"], fk.rolling_mean(fk.shifted(v["volume_rate"], start, 1), start, 20))
    r["buy_sell_imbalance"] = lambda v: (v["buy_volume"] - v["sell_volume"]) / v["volume"]
    r["vwap_distance"] = lambda v: v["close"] / v["vwap"] - 1.0
    r["hl_range"] = lambda v: (v["high"] - v["low"]) / v["close"]
    # TA-Lib RSI(14): Wilder averages seeded with the mean of the first 14 moves.
    r["_gain_loss"] = lambda v: fk.gains_losses(v["close"] - v["_prev_c"])
    r["_avg_gain"] = lambda v: fk.ema_seeded(v["_gain_loss"][0], start, pos, init["_avg_gain"], 14, 14, 0.0, True)
    r["_avg_loss"] = lambda v: fk.ema_seeded(v["_gain_loss"][1], start, pos, init["_avg_loss"], 14, 14, 0.0, True)
    r["rsi_14"] = lambda v: _rsi(v["_avg_gain"], v["_avg_loss"])
    # TA-Lib MACD(12, 26, 9): both EMAs start at the slow one's first output (position 25).
    r["_ema_fast"] = lambda v: fk.ema_seeded(v["close"], start, pos, init["_ema_fast"], 12, 25, 2.0 / 13.0, False)
    r["_ema_slow"] = lambda v: fk.ema_seeded(v["close"], start, pos, init["_ema_slow"], 26, 25, 2.0 / 27.0, False)
    r["_macd_all"] = lambda v: v["_ema_fast"] - v["_ema_slow"]
    r["_ema_signal"] = lambda v: fk.ema_seeded(v["_macd_all"], start, pos, init["_ema_signal"], 9, 33, 2.0 / 10.0, False)
    r["macd"] = lambda v: np.where(pos >= 33, v["_macd_all"], np.nan)
    r["macd_signal"] = lambda v: v["_ema_signal"]
    r["macd_hist"] = lambda v: v["macd"] - v["macd_signal"]
    r["_bb"] = lambda v: fk.rolling_mean_std(v["close"], start, 20)
    r["bb_middle"] = lambda v: v["_bb"][0]
    r["bb_upper"] = lambda v: v["_bb"][0] + 2.0 * v["_bb"][1]
    r["bb_lower"] = lambda v: v["_bb"][0] - 2.0 * v["_bb"][1]
    r["_atr"] = lambda v: fk.ema_seeded(fk.true_range(v["high"], v["low"], v["_prev_c"], pos), start, pos, init["_atr"], 14, 14, 0.0, True)
    r["atr_14"] = lambda v: v["_atr"]
    r["momentum_short"] = lambda v: v["close"] / fk.rolling_mean(v["close"], start, 10) - 1.0
    r["momentum_long"] = lambda v: v["close"] / fk.rolling_mean(v["close"], start, 50) - 1.0
    r["macd_pct"] = lambda v: v["macd"] / v["close"]
    r["macd_hist_pct"] = lambda v: v["macd_hist"] / v["close"]
    r["bb_width"] = lambda v: (v["bb_upper"] - v["bb_lower"]) / v["bb_middle"]
    r["bb_percent_b"] = lambda v: _percent_b(v["close"], v["bb_upper"], v["bb_lower"])
    r["atr_pct"] = lambda v: v["atr_14"] / v["close"]
    r["composite_score"] = lambda v: _composite(v["return_5"], v["realized_vol_15"], v["volume_zscore_15"], v["buy_sell_imbalance"])
    r["_lr2_known"] = lambda v: np.where(np.isnan(v["_lr2"]), 0.0, v["_lr2"])
    for span, window in windows.items():
        seconds = duration_us(span) / 1e6
        r[f"realized_vol_{span}"] = lambda v, w=window: np.sqrt(fk.window_sums_by_time(v["_lr2_known"], ts, start, w))
        r[f"volume_rate_{span}"] = lambda v, w=window, s=seconds: fk.window_sums_by_time(v["volume"], ts, start, w) / s
        r[f"trade_rate_{span}"] = lambda v, w=window, s=seconds: fk.window_sums_by_time(v["trade_count"], ts, start, w) / s
        r[f"return_{span}"] = lambda v, span=span: _return_since(v["close"], fk.last_at_or_before(ts, start, duration_us(span)))
    return r


def _zscore(x: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return np.where(sd > 0, (x - mean) / sd, np.where(sd == 0, 0.0, np.nan))


def _ratio_to_positive(x: np.ndarray, base: np.ndarray) -> np.ndarray:
    return np.where(base > 0, x / base, np.nan)


def _rsi(avg_gain: np.ndarray, avg_loss: np.ndarray) -> np.ndarray:
    total = avg_gain + avg_loss
    return np.where(total > 0, 100.0 * (avg_gain / total), np.where(total == 0, 0.0, np.nan))


def _percent_b(c: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    band = upper - lower
    return np.where(band > 0, (c - lower) / band, np.nan)


def _composite(return_5: np.ndarray, vol_15: np.ndarray, zscore_15: np.ndarray, imbalance: np.ndarray) -> np.ndarray:
    ret_z = np.clip(return_5 / (vol_15 * (5 / 15) ** 0.5), -5, 5)
    parts = np.vstack([ret_z, np.clip(zscore_15, -5, 5), np.clip(3.0 * imbalance, -5, 5)])
    counts = np.sum(np.isfinite(parts), axis=0)
    return np.where(counts > 0, np.nansum(np.where(np.isfinite(parts), parts, 0.0), axis=0) / np.maximum(counts, 1), np.nan)


def _return_since(c: np.ndarray, j: np.ndarray) -> np.ndarray:
    return np.where(j >= 0, c / c[np.maximum(j, 0)] - 1.0, np.nan)


def _resumed_offsets(b: pl.DataFrame, start: np.ndarray, resume: pl.DataFrame | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per row: the position its series' first row passed has in the whole series (0 unless
    resumed) and, on resumed first rows, the recursive values there (NaN elsewhere)."""
    offset = np.zeros(b.height, np.int64)
    hit, init = resumed_heads(b, "ts", start, resume, EMA_STATE)
    if hit.height:
        if hit.filter((pl.col(POS) > 0) & (pl.col(POS) < RESUME_MARGIN_ROWS)).height:
            raise ValueError(f"a series resumes at its first row or at least {RESUME_MARGIN_ROWS} rows in (the EMAs seed before)")
        offset[hit["_row"].to_numpy().astype(np.int64)] = hit[POS].to_numpy()
    return offset, init
