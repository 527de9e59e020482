"""Feature snapshots from bars (and, for rush-trade features, the trades behind them).

Every feature is computed per token over that token's stored bars in time order, and only from
data at or before its own bar: a bar's features are known when the bar closes and never read a
later bar, trade or coarser bar. Standard indicators follow TA-Lib's definitions exactly,
including how they seed (a simple mean of the first ``n`` values, then recursive smoothing), so
after warm-up they equal TA-Lib on the same series. Because only buckets with trades are stored,
rates divide by the seconds that really elapsed (:func:`adjust_features_for_time_interval`), so a
bar after a ten-minute gap never looks like a two-second move.

Families:

- per bar and bar-count windows (returns, volatility, rates, order flow, TA-Lib indicators);
- time-span windows ``*_<span>`` (``30s``, ``5m``, ``1h`` by default) over wall-clock time, which
  mean the same at every interval;
- rush trades (several trades in one millisecond, the footprint of one aggressive order) per bar,
  and the La Morgia et al. (2020) pump-detection family ``lm_<chunk>_*`` on 5 s / 15 s / 25 s
  chunks of buy trades, with the paper's rolling windows (700 / 900 / 900 chunks);
- multi-timeframe ``mtf_<interval>_*``: each bar joined to the last *complete* bar of each
  coarser interval;
- token age and time of day.

Every feature's name, definition, unit and window is in ``lib/feature_catalog.py``; the README's
feature table is generated from it (``python -m alevor_assets feature-table``) and a test compares
it with the columns this module produces.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from alevor_assets.lib import feature_kernels as fk
from alevor_assets.lib.feature_catalog import (  # noqa: F401 - re-exported: the catalog is part of this module's API
    DEFAULT_MAX_GAP,
    DEFAULT_MULTI_TIMEFRAME,
    DEFAULT_RUSH_CHUNKS,
    DEFAULT_SPANS,
    HORIZONS,
    KEYS,
    LM_FEATURES,
    LM_PRICE_WINDOW,
    MTF_FEATURES,
    FeatureConfig,
    feature_docs,
    feature_names,
    feature_schema,
    feature_table_markdown,
)
from alevor_assets.lib.intervals import duration_us, interval_seconds, interval_us
from alevor_assets.lib.trade_features import (
    LM_STATE,
    SEGMENT,
    TradeTables,
    _attach_segments,
    _finite,
    _la_morgia,
    resumed_heads,
    series_segments,
)
from alevor_assets.lib.schemas import UTC_US

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
    same_series = pl.col(SEGMENT) == pl.col(SEGMENT).shift(1)
    gap = pl.when(same_series).then((pl.col("ts") - pl.col("ts").shift(1)).dt.total_microseconds() / 1e6)
    framed = ordered.with_columns(gap.alias("gap_seconds")).with_columns(
        pl.col("gap_seconds").fill_null(step).alias("elapsed_seconds")
    )
    windows = {s: max(duration_us(s), interval_us(interval)) for s in spans}
    return framed, windows


_NO_GAP = 1 << 40  # a max_gap that never restarts a series


def _ordered(bars: pl.DataFrame) -> pl.DataFrame:
    """Rows in (token, ts) order; cheap when they already are or when days were concatenated."""
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
                   keep_state: bool = False) -> pl.DataFrame:
    """The per-bar, bar-count and wall-clock families for one interval, computed per series (a
    token, restarted after a long silence) by compiled kernels; ``token, interval, ts, close,
    _seg`` and the features, in (token, ts) order. ``bars`` carries ``_seg``. ``resume`` (``token,
    ts, _pos`` and :data:`EMA_STATE`): series whose first row passed is that row of a longer
    series, at that position and with those recursive values; ``keep_state`` adds ``_pos`` and
    :data:`EMA_STATE` to the output."""
    b, windows = adjust_features_for_time_interval(bars, interval, spans)
    n = b.height
    start = fk.segment_starts(b[SEGMENT].to_numpy() if n else np.zeros(0, np.int64))
    offset, init = _resumed_offsets(b, start, resume)
    pos = np.arange(n) - start + offset[start]
    ts = b["ts"].dt.epoch("us").to_numpy()
    col = {name: b[name].cast(pl.Float64).to_numpy() for name in (
        "high", "low", "close", "volume", "quote_volume", "buy_volume", "sell_volume", "trade_count", "vwap")}
    c, h, lo = col["close"], col["high"], col["low"]
    f: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        elapsed = b["elapsed_seconds"].to_numpy()
        f["gap_seconds"], f["elapsed_seconds"] = b["gap_seconds"].cast(pl.Float64).to_numpy(), elapsed
        prev_c = fk.shifted(c, start, 1)
        log_ret_1 = np.log(c / prev_c)
        for k in HORIZONS:
            past = prev_c if k == 1 else fk.shifted(c, start, k)
            f[f"return_{k}"] = c / past - 1.0
            f[f"log_return_{k}"] = np.log(c / past)
        lr2 = log_ret_1**2
        for k in HORIZONS[1:]:
            f[f"realized_vol_{k}"] = np.sqrt(fk.rolling_sum(lr2, start, k))
        velocity = log_ret_1 / elapsed
        f["price_velocity"] = velocity
        f["price_acceleration"] = (velocity - fk.shifted(velocity, start, 1)) / elapsed
        volume_rate = col["volume"] / elapsed
        f["volume_rate"] = volume_rate
        f["quote_volume_rate"] = col["quote_volume"] / elapsed
        f["trade_rate"] = col["trade_count"] / elapsed
        for k in HORIZONS[2:]:
            mean, sd = fk.rolling_mean_std(volume_rate, start, k)
            f[f"volume_zscore_{k}"] = np.where(sd > 0, (volume_rate - mean) / sd, np.where(sd == 0, 0.0, np.nan))
        prev_mean = fk.rolling_mean(fk.shifted(volume_rate, start, 1), start, 20)
        f["volume_ratio"] = np.where(prev_mean > 0, volume_rate / prev_mean, np.nan)
        f["buy_sell_imbalance"] = (col["buy_volume"] - col["sell_volume"]) / col["volume"]
        f["vwap_distance"] = c / col["vwap"] - 1.0
        f["hl_range"] = (h - lo) / c
        # TA-Lib RSI(14): Wilder averages seeded with the mean of the first 14 moves.
        diff = c - prev_c
        gain = np.where(diff > 0, diff, np.where(np.isnan(diff), np.nan, 0.0))
        loss = np.where(diff < 0, -diff, np.where(np.isnan(diff), np.nan, 0.0))
        ema: dict[str, np.ndarray] = {}
        avg_gain = ema["_avg_gain"] = fk.ema_seeded(gain, start, pos, init["_avg_gain"], 14, 14, 0.0, True)
        avg_loss = ema["_avg_loss"] = fk.ema_seeded(loss, start, pos, init["_avg_loss"], 14, 14, 0.0, True)
        total = avg_gain + avg_loss
        f["rsi_14"] = np.where(total > 0, 100.0 * (avg_gain / total), np.where(total == 0, 0.0, np.nan))
        # TA-Lib MACD(12, 26, 9): both EMAs start at the slow one's first output (position 25).
        fast = ema["_ema_fast"] = fk.ema_seeded(c, start, pos, init["_ema_fast"], 12, 25, 2.0 / 13.0, False)
        slow = ema["_ema_slow"] = fk.ema_seeded(c, start, pos, init["_ema_slow"], 26, 25, 2.0 / 27.0, False)
        macd_all = fast - slow
        signal = ema["_ema_signal"] = fk.ema_seeded(macd_all, start, pos, init["_ema_signal"], 9, 33, 2.0 / 10.0, False)
        macd = np.where(pos >= 33, macd_all, np.nan)
        f["macd"], f["macd_signal"], f["macd_hist"] = macd, signal, macd - signal
        mid, sd20 = fk.rolling_mean_std(c, start, 20)
        f["bb_middle"], f["bb_upper"], f["bb_lower"] = mid, mid + 2.0 * sd20, mid - 2.0 * sd20
        true_range = np.maximum(h - lo, np.maximum(np.abs(h - prev_c), np.abs(lo - prev_c)))
        true_range = np.where(pos >= 1, true_range, np.nan)
        f["atr_14"] = ema["_atr"] = fk.ema_seeded(true_range, start, pos, init["_atr"], 14, 14, 0.0, True)
        f["momentum_short"] = c / fk.rolling_mean(c, start, 10) - 1.0
        f["momentum_long"] = c / fk.rolling_mean(c, start, 50) - 1.0
        f["macd_pct"] = macd / c
        f["macd_hist_pct"] = f["macd_hist"] / c
        f["bb_width"] = (f["bb_upper"] - f["bb_lower"]) / mid
        band = f["bb_upper"] - f["bb_lower"]
        f["bb_percent_b"] = np.where(band > 0, (c - f["bb_lower"]) / band, np.nan)
        f["atr_pct"] = f["atr_14"] / c
        ret_z = np.clip(f["return_5"] / (f["realized_vol_15"] * (5 / 15) ** 0.5), -5, 5)
        parts = np.vstack([ret_z, np.clip(f["volume_zscore_15"], -5, 5), np.clip(3.0 * f["buy_sell_imbalance"], -5, 5)])
        counts = np.sum(np.isfinite(parts), axis=0)
        f["composite_score"] = np.where(counts > 0, np.nansum(np.where(np.isfinite(parts), parts, 0.0), axis=0) / np.maximum(counts, 1), np.nan)
        lr2_known = np.where(np.isnan(lr2), 0.0, lr2)
        for span, window in windows.items():
            span_us = duration_us(span)
            seconds = span_us / 1e6
            f[f"realized_vol_{span}"] = np.sqrt(fk.window_sums_by_time(lr2_known, ts, start, window))
            f[f"volume_rate_{span}"] = fk.window_sums_by_time(col["volume"], ts, start, window) / seconds
            f[f"trade_rate_{span}"] = fk.window_sums_by_time(col["trade_count"], ts, start, window) / seconds
            j = fk.last_at_or_before(ts, start, span_us)
            f[f"return_{span}"] = np.where(j >= 0, c / c[np.maximum(j, 0)] - 1.0, np.nan)
    out = b.select("token", "interval", "ts", "close", SEGMENT)
    # A ratio with a zero denominator has no value: null, never inf or NaN.
    out = out.with_columns([pl.Series(name, _finite(values), dtype=pl.Float64, nan_to_null=True) for name, values in f.items()])
    if keep_state:
        out = out.with_columns(pl.Series(POS, pos, dtype=pl.Int64), *[pl.Series(k, v, dtype=pl.Float64) for k, v in ema.items()])
    return out


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


def _time_of_day(ts: pl.Expr) -> dict[str, pl.Expr]:
    hour, minute = ts.dt.hour().cast(pl.Float64), ts.dt.minute().cast(pl.Float64)
    return {
        "hour_sin": (2 * math.pi * hour / 24).sin(),
        "hour_cos": (2 * math.pi * hour / 24).cos(),
        "minute_sin": (2 * math.pi * minute / 60).sin(),
        "minute_cos": (2 * math.pi * minute / 60).cos(),
    }


def _asof_rows(left: np.ndarray, right: np.ndarray, span: int, exact: bool = False) -> pl.Series:
    """For each left key, the row of the last right key at or before it in the same series
    (right keys sorted), or with exactly that key; null where there is none."""
    if len(right) == 0:
        return pl.Series([None] * len(left), dtype=pl.UInt32)
    idx = np.searchsorted(right, left, side="right") - 1
    found = right[np.maximum(idx, 0)]
    ok = (idx >= 0) & ((found == left) if exact else (found // span == left // span))
    return pl.Series(np.where(ok, idx, 0), dtype=pl.UInt32).scatter(np.flatnonzero(~ok), None)


def compute_features(
    bars: pl.DataFrame | pl.LazyFrame,
    interval: str,
    *,
    tokens: pl.DataFrame | None = None,
    trades: pl.DataFrame | None = None,
    config: FeatureConfig | None = None,
    memo: dict | None = None,
) -> pl.DataFrame:
    """Feature snapshot for every bar of ``interval`` in ``bars`` (Polars in, Polars out).

    ``bars`` has the ``bars`` columns. Rows of the configured multi-timeframe intervals coarser
    than ``interval`` feed the ``mtf_*`` columns (null when absent). ``trades`` (``raw_trades``
    columns, covering the same span) feeds the rush-trade columns; ``tokens`` (``token``,
    ``created_at``) feeds ``token_age_hours``. The output has ``token, interval, ts`` and
    :func:`feature_names` in that order, sorted by token and ts; every value is finite or null.
    A token without rows on ``config.max_gap`` consecutive UTC days starts a new series: returns,
    windows, EMAs and La Morgia chunks restart, and multi-timeframe and La Morgia values come
    only from the same series. Indicators need a warm-up (see the README table): pass earlier
    data too and cut the result when you need exact values for a later span. ``memo``: a dict
    shared by calls on the same ``trades`` for several intervals; what depends only on the trades
    (or on identical coarser bars) is computed once (the values are those of separate calls).
    """
    config = config or FeatureConfig()
    memo = _Memo(memo if memo is not None else {}, trades)
    with_trades = trades is not None and trades.height > 0
    tables = memo.get("tables", lambda: TradeTables.of(trades)) if with_trades else None
    frame = bars.collect() if isinstance(bars, pl.LazyFrame) else bars
    return features_from_tables(frame, interval, tables, tokens=tokens, config=config, memo=memo)[0]


@dataclass
class SeriesState:
    """Where series are resumed (or, as a result, the state of each computed row): per interval,
    bar rows with ``token, ts, _pos`` and :data:`EMA_STATE`; per La Morgia chunk size, chunks
    with ``token, start`` and ``LM_STATE``."""

    bars: dict[str, pl.DataFrame] = field(default_factory=dict)
    chunks: dict[str, pl.DataFrame] = field(default_factory=dict)


def features_from_tables(
    frame: pl.DataFrame,
    interval: str,
    tables: TradeTables | None,
    *,
    tokens: pl.DataFrame | None,
    config: FeatureConfig,
    memo: _Memo | None = None,
    resume: SeriesState | None = None,
    keep_state: bool = False,
) -> tuple[pl.DataFrame, SeriesState]:
    """:func:`compute_features` on the trades' tables instead of the trades. ``resume`` continues
    series from a later row: bars per interval, fine or coarser (see ``_base_features``), and La
    Morgia chunks per chunk size (``_la_morgia``). With ``keep_state`` the second result holds the
    state of every row computed, from which a later call can resume (``resume_points``,
    ``chunk_resume_points``)."""
    memo = memo or _Memo({}, None)
    resume = resume or SeriesState()
    states = SeriesState()
    step = interval_us(interval)
    fine = frame.filter(pl.col("interval") == interval)
    coarse = {j: frame.filter(pl.col("interval") == j) for j in config.coarser(interval)}
    with_trades = bool(tables)
    segments = series_segments([fine, *coarse.values(), *([tables.days] if with_trades else [])], config.max_gap_days)
    fine = fine.with_columns(_attach_segments(fine, segments))
    out = _base_features(fine, interval, config.spans, resume.bars.get(interval), keep_state)
    if keep_state:
        states.bars[interval] = out.select("token", "ts", SEGMENT, POS, *EMA_STATE)
    out = out.with_columns(**_time_of_day(pl.col("ts")))
    names = feature_names(interval, config)
    if out.height == 0:
        return pl.DataFrame(schema=feature_schema(interval, config)), states
    # Join by lookups of (series, time) keys instead of wide sorts and joins of the feature frame.
    # Right-hand tables: bars' rush counts, La Morgia chunks, coarser bars, keyed by end time.
    rights: list[tuple[str, pl.DataFrame, np.ndarray]] = []
    rush_cols = ["rush_trade_share", "rush_buy_orders"]
    if with_trades:
        rush = tables.rush(interval)
        rush = rush.with_columns(_attach_segments(rush, segments))
        rights.append(("rush", rush, rush["ts"].dt.epoch("us").to_numpy() + step))
        for chunk, window in config.rush_chunks.items():
            lm = _la_morgia(tables.chunks(chunk), chunk, window, segments, resume.chunks.get(chunk), keep_state)
            if keep_state:
                states.chunks[chunk] = lm.select("token", "start", "_end", SEGMENT, *LM_STATE)
            rights.append(("lm", lm, lm["_end"].to_numpy()))
    for j, rows in coarse.items():
        rows = rows.with_columns(_attach_segments(rows, segments))
        if j in resume.bars or keep_state:
            coarse_features = _base_features(rows, j, (), resume.bars.get(j), keep_state)
            if keep_state:
                states.bars[j] = coarse_features.select("token", "ts", SEGMENT, POS, *EMA_STATE)
        else:
            coarse_features = memo.coarse(j, rows)
        rights.append((j, coarse_features, coarse_features["ts"].dt.epoch("us").to_numpy() + interval_us(j)))
    end_us = out["ts"].dt.epoch("us").to_numpy() + step
    times = [end_us, *(t for _, _, t in rights if len(t))]
    base_us = min(int(t.min()) for t in times)
    # Keys of right rows later than every bar are pushed past them (they can never match).
    span = int(end_us.max()) - base_us + 2
    left = out[SEGMENT].to_numpy() * span + (end_us - base_us)
    extra: list[pl.Series] = []
    found = {kind for kind, _, _ in rights}
    if "rush" not in found:
        extra += [pl.Series(c, [None] * out.height, dtype=pl.Float64) for c in rush_cols]
        extra += [pl.Series(f"lm_{c}_{f}", [None] * out.height, dtype=pl.Float64) for c in config.rush_chunks for f in LM_FEATURES]
    for kind, table, time_us in rights:
        right = table[SEGMENT].to_numpy() * span + (np.minimum(time_us, base_us + span - 1) - base_us)
        if kind == "rush":
            rows = _asof_rows(left, right, span, exact=True)
            extra += [table[c].gather(rows) for c in rush_cols]
        elif kind == "lm":
            rows = _asof_rows(left, right, span)
            extra += [table[c].gather(rows) for c in table.columns if c.startswith("lm_")]
        else:
            # A coarse bar counts once it is complete: its end at or before this bar's end.
            rows = _asof_rows(left, right, span)
            extra += [table[f].gather(rows).alias(f"mtf_{kind}_{f}") for f in MTF_FEATURES]
    for j in coarse:
        if j not in found:
            extra += [pl.Series(f"mtf_{j}_{f}", [None] * out.height, dtype=pl.Float64) for f in MTF_FEATURES]
    if tokens is not None and tokens.height:
        created = tokens.select("token", pl.col("created_at").cast(UTC_US)).unique("token")
        age = out.select("token", "ts").join(created, on="token", how="left", maintain_order="left")
        extra.append(((age["ts"] - age["created_at"]).dt.total_microseconds() / 3.6e9).alias("token_age_hours"))
    else:
        extra.append(pl.Series("token_age_hours", [None] * out.height, dtype=pl.Float64))
    out = out.with_columns(extra)
    return out.select(*KEYS, *[pl.col(n).cast(pl.Float64) for n in names]), states


class _Memo:
    """What :func:`compute_features` may reuse across calls on the same trades: results that
    depend only on them, and the base features of coarser bars equal (series ids included) to
    those of an earlier call. Anything else is computed afresh."""

    def __init__(self, store: dict, trades: pl.DataFrame | None) -> None:
        if store.get("trades") is not trades:
            store.clear()
            store["trades"] = trades
        self.store = store

    def get(self, key: object, make: Callable[[], object]) -> Any:
        if key not in self.store:
            self.store[key] = make()
        return self.store[key]

    def coarse(self, interval: str, rows: pl.DataFrame) -> pl.DataFrame:
        key = ("coarse", interval)
        seen = self.store.get(key)
        if seen is None or not seen[0].equals(rows):
            seen = (rows, _base_features(rows, interval, ()))
            self.store[key] = seen
        return seen[1]


def resume_points(states: pl.DataFrame, interval: str, spans: Sequence[str], *, next_row: bool) -> pl.DataFrame:
    """Per token, the latest row of ``states`` (``_base_features`` state rows of each token's
    series, in time order) from which a later computation can resume and still give every row it
    needs exactly: the rows after the last one (``next_row``: bars of the interval that have not
    closed yet) or from the last one on (a coarser interval, whose newest bar later bars read).

    A resume row ``c`` lies in the newest series, at its start or at least
    :data:`RESUME_MARGIN_ROWS` rows in, at least that many rows before the first row needed, and,
    for the wall-clock spans, before the span-aligned block the earliest needed row's windows
    start in (only row ``c`` itself lacks its one-row differences; ``window_sums_by_time`` sums
    whole blocks). Tokens with no such row are left out (they keep their earlier one)."""
    if states.height == 0:
        return states.select("token", "ts", POS, *EMA_STATE)
    ts = pl.col("ts").dt.epoch("us")
    rows = states.with_columns(pl.int_range(pl.len()).over("token").alias("_i"), ts.alias("_t"))
    step = interval_us(interval) if next_row else 0
    last = rows.group_by("token").agg(
        (pl.col("_i").max() + int(next_row)).alias("_need"), (pl.col("_t").max() + step).alias("_need_t"),
        pl.col(SEGMENT).last().alias("_last_seg"))
    windows = [max(duration_us(s), interval_us(interval)) for s in spans]
    block = pl.min_horizontal([(pl.col("_need_t") - w) // w * w for w in windows]) if windows else None
    ok = ((pl.col(SEGMENT) == pl.col("_last_seg")) & (pl.col("_i") <= pl.col("_need") - RESUME_MARGIN_ROWS)
          & ((pl.col(POS) == 0) | (pl.col(POS) >= RESUME_MARGIN_ROWS)))
    if block is not None:
        ok = ok & (pl.col("_t") < block)
    found = rows.join(last, on="token").filter(ok)
    return found.sort("token", "_i").group_by("token", maintain_order=True).last().select("token", "ts", POS, *EMA_STATE)


def restrict_to_window(features: pl.DataFrame, start_us: int, end_us: int) -> pl.DataFrame:
    """Rows with ``start <= ts < end`` (epoch microseconds)."""
    ts = pl.col("ts").dt.epoch("us")
    return features.filter((ts >= start_us) & (ts < end_us))
