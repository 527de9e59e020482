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
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from alevor_assets.lib import feature_kernels as fk
from alevor_assets.lib.cores import in_threads, usable_cores
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
                   keep_state: bool = False, wanted: Collection[str] | None = None) -> pl.DataFrame:
    """The per-bar, bar-count and wall-clock families for one interval, computed per series (a
    token, restarted after a long silence) by compiled kernels; ``token, interval, ts, close,
    _seg`` and the features (only those in ``wanted``, if given), in (token, ts) order. ``bars``
    carries ``_seg``. ``resume`` (``token, ts, _pos`` and :data:`EMA_STATE`): series whose first
    row passed is that row of a longer series, at that position and with those recursive values;
    ``keep_state`` adds ``_pos`` and :data:`EMA_STATE` to the output."""
    b = _ordered(bars)
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


def _time_of_day(ts: pl.Expr) -> dict[str, pl.Expr]:
    hour, minute = ts.dt.hour().cast(pl.Float64), ts.dt.minute().cast(pl.Float64)
    return {
        "hour_sin": (2 * math.pi * hour / 24).sin(),
        "hour_cos": (2 * math.pi * hour / 24).cos(),
        "minute_sin": (2 * math.pi * minute / 60).sin(),
        "minute_cos": (2 * math.pi * minute / 60).cos(),
    }


def _asof_rows(left: np.ndarray, right: np.ndarray, span: int, exact: bool = False, left_sorted: bool = False) -> pl.Series:
    """For each left key, the row of the last right key at or before it in the same series
    (right keys sorted; ``left_sorted``: left keys too, so one merge pass finds them), or with
    exactly that key; null where there is none."""
    if len(right) == 0:
        return pl.Series([None] * len(left), dtype=pl.UInt32)
    idx = fk.last_key_at_or_before(left, right) if left_sorted else np.searchsorted(right, left, side="right") - 1
    found = right[np.maximum(idx, 0)]
    ok = (idx >= 0) & ((found == left) if exact else (found // span == left // span))
    rows = pl.Series(np.where(ok, idx, 0), dtype=pl.UInt32)
    return pl.select(pl.when(pl.Series(ok)).then(rows)).to_series()


def compute_features(
    bars: pl.DataFrame | pl.LazyFrame,
    interval: str,
    *,
    tokens: pl.DataFrame | None = None,
    trades: pl.DataFrame | None = None,
    config: FeatureConfig | None = None,
    memo: dict | None = None,
    columns: Collection[str] | None = None,
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
    ``columns``: only these features (``token, interval, ts`` and them, in the order above), and
    only the work they need; their values are those of the whole set.
    """
    config = config or FeatureConfig()
    memo = _Memo(memo if memo is not None else {}, trades)
    with_trades = trades is not None and trades.height > 0
    names = _selected(feature_names(interval, config), columns, interval)
    needs_trades = any(n.startswith(("rush_", "lm_")) for n in names)
    tables = None
    if with_trades:
        # Without trade features the trades still say where series restart (their days).
        tables = memo.get("tables", lambda: TradeTables.of(trades)) if needs_trades else TradeTables(TradeTables.days_of(trades))
    frame = bars.collect() if isinstance(bars, pl.LazyFrame) else bars
    return features_from_tables(frame, interval, tables, tokens=tokens, config=config, memo=memo, columns=columns)[0]


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
    columns: Collection[str] | None = None,
) -> tuple[pl.DataFrame, SeriesState]:
    """:func:`compute_features` on the trades' tables instead of the trades. ``resume`` continues
    series from a later row: bars per interval, fine or coarser (see ``_base_features``), and La
    Morgia chunks per chunk size (``_la_morgia``). With ``keep_state`` the second result holds the
    state of every row computed, from which a later call can resume (``resume_points``,
    ``chunk_resume_points``); it needs every column. ``columns``: see :func:`compute_features`."""
    names = _selected(feature_names(interval, config), columns, interval)
    if keep_state and columns is not None:
        raise ValueError("keep_state keeps the state of every family: it computes every column")
    wanted = set(names)
    memo = memo or _Memo({}, None)
    resume = resume or SeriesState()
    states = SeriesState()
    step = interval_us(interval)
    fine = frame.filter(pl.col("interval") == interval)
    coarse = {j: frame.filter(pl.col("interval") == j) for j in config.coarser(interval)}
    with_trades = bool(tables)
    segments = series_segments([fine, *coarse.values(), *([tables.days] if with_trades else [])], config.max_gap_days)
    fine = fine.with_columns(_attach_segments(fine, segments))
    out = _base_features(fine, interval, config.spans, resume.bars.get(interval), keep_state, wanted)
    if keep_state:
        states.bars[interval] = out.select("token", "ts", SEGMENT, POS, *EMA_STATE)
    out = out.with_columns(**{k: e for k, e in _time_of_day(pl.col("ts")).items() if k in wanted})
    if out.height == 0:
        schema = feature_schema(interval, config)
        return pl.DataFrame(schema={k: schema[k] for k in (*KEYS, *names)}), states
    # Join by lookups of (series, time) keys instead of wide sorts and joins of the feature frame.
    # Right-hand tables: bars' rush counts, La Morgia chunks, coarser bars, keyed by end time.
    rights: list[tuple[str, pl.DataFrame, np.ndarray]] = []
    rush_cols = ["rush_trade_share", "rush_buy_orders"]
    families: list[str] = []
    if with_trades and wanted.intersection(rush_cols):
        families.append("rush")
    families += [chunk for chunk in config.rush_chunks
                 if with_trades and wanted.intersection(f"lm_{chunk}_{f}" for f in LM_FEATURES)]

    def trade_family(family: str) -> tuple[str, pl.DataFrame, np.ndarray]:
        if family == "rush":
            rush = tables.rush(interval)
            rush = rush.with_columns(_attach_segments(rush, segments))
            return "rush", rush, rush["ts"].dt.epoch("us").to_numpy() + step
        lm = _la_morgia(tables.chunks(family), family, config.rush_chunks[family], segments, resume.chunks.get(family), keep_state)
        if keep_state:
            states.chunks[family] = lm.select("token", "start", "_end", SEGMENT, *LM_STATE)
        return "lm", lm, lm["_end"].to_numpy()

    # Each trade family reads the trades on its own: side by side, one per core.
    rights += in_threads(trade_family, families, usable_cores())
    for j, rows in coarse.items():
        if not wanted.intersection(f"mtf_{j}_{f}" for f in MTF_FEATURES):
            continue
        rows = rows.with_columns(_attach_segments(rows, segments))
        if j in resume.bars or keep_state:
            coarse_features = _base_features(rows, j, (), resume.bars.get(j), keep_state, MTF_FEATURES)
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
    # The rows' (token, ts) order sorts their keys too; checked once for every lookup below.
    left_sorted = len(left) < 2 or bool(np.all(left[1:] >= left[:-1]))
    extra: list[pl.Series] = []
    for kind, table, time_us in rights:
        right = table[SEGMENT].to_numpy() * span + (np.minimum(time_us, base_us + span - 1) - base_us)
        if kind == "rush":
            rows = _asof_rows(left, right, span, exact=True, left_sorted=left_sorted)
            extra += _gather(table, rush_cols, rows)
        elif kind == "lm":
            rows = _asof_rows(left, right, span, left_sorted=left_sorted)
            extra += _gather(table, [c for c in table.columns if c.startswith("lm_")], rows)
        else:
            # A coarse bar counts once it is complete: its end at or before this bar's end.
            rows = _asof_rows(left, right, span, left_sorted=left_sorted)
            extra += [s.alias(f"mtf_{kind}_{s.name}") for s in _gather(table, MTF_FEATURES, rows)]
    if tokens is not None and tokens.height and "token_age_hours" in wanted:
        created = tokens.select("token", pl.col("created_at").cast(UTC_US)).unique("token")
        age = out.select("token", "ts").join(created, on="token", how="left", maintain_order="left")
        extra.append(((age["ts"] - age["created_at"]).dt.total_microseconds() / 3.6e9).alias("token_age_hours"))
    # What the data cannot give (no trades, no coarser bars, no token ages) is null.
    have = {*out.columns, *(e.name for e in extra)}
    extra += [pl.Series(n, [None] * out.height, dtype=pl.Float64) for n in names if n not in have]
    # Cut like the base columns (one chunk per thread's part): a frame whose columns are cut
    # differently is copied whole into one chunk by the next select.
    lengths = out["ts"].chunk_lengths()
    out = out.with_columns([_cut_like(e, lengths) for e in extra])
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
            seen = (rows, _base_features(rows, interval, (), wanted=MTF_FEATURES))
            self.store[key] = seen
        return seen[1]


def _gather(table: pl.DataFrame, columns: Sequence[str], rows: pl.Series) -> list[pl.Series]:
    """``columns`` of ``table`` at ``rows`` (null rows: null), the columns side by side."""
    return table.select([pl.col(c).gather(rows) for c in columns]).get_columns()


def _cut_like(s: pl.Series, lengths: list[int]) -> pl.Series:
    """``s`` as zero-copy slices of the given chunk lengths."""
    if len(lengths) <= 1:
        return s
    starts = np.cumsum([0, *lengths[:-1]])
    return pl.concat([s.slice(int(a), n) for a, n in zip(starts, lengths)], rechunk=False)


def _selected(names: list[str], columns: Collection[str] | None, interval: str) -> list[str]:
    if columns is None:
        return names
    unknown = sorted(set(columns).difference(names))
    if unknown:
        raise ValueError(f"compute_features for {interval} has no feature(s) {unknown}")
    asked = set(columns)
    return [n for n in names if n in asked]


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
