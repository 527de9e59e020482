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
from alevor_assets.lib.base_features import (  # noqa: F401 - adjust_features_for_time_interval is public API
    EMA_STATE,
    POS,
    RESUME_MARGIN_ROWS,
    _base_features,
    adjust_features_for_time_interval,
)
from alevor_assets.lib.intervals import duration_us, interval_us
from alevor_assets.lib.schemas import UTC_US
from alevor_assets.lib.trade_features import LM_STATE, SEGMENT, TradeTables, _attach_segments, _la_morgia, series_segments


def _time_of_day(ts: pl.Series, wanted: Collection[str]) -> list[pl.Series]:
    """``hour_sin`` .. ``minute_cos`` of UTC timestamps ``ts`` (those in ``wanted``). An hour or
    minute takes 24 or 60 values: each sine and cosine is computed once per value, by the same
    expression as per row, and looked up, so the bits are those of 4.65 M evaluations in 0.4x
    their time."""
    us = ts.dt.epoch("us").to_numpy()
    out = []
    for unit, n, name in ((3_600_000_000, 24, "hour"), (60_000_000, 60, "minute")):
        fns = [fn for fn in ("sin", "cos") if f"{name}_{fn}" in wanted]
        if not fns:
            continue
        angle = 2 * math.pi * pl.Series(range(n)).cast(pl.Float64) / n
        index = (us // unit) % n
        out += [pl.Series(f"{name}_{fn}", getattr(angle, fn)().to_numpy()[index]) for fn in fns]
    return out


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
    # One contiguous chunk per column first: on a frame of many chunks (a Parquet file's row
    # groups, stacked days) Polars copies every column an eager select or filter touches into one
    # chunk again, op after op (0.34 s for one select of five columns of 4.65 M bars, 0.3 ms after).
    frame = frame.rechunk()
    fine = frame.filter(pl.col("interval") == interval)
    coarse = {j: frame.filter(pl.col("interval") == j) for j in config.coarser(interval)}
    with_trades = bool(tables)
    segments = series_segments([fine, *coarse.values(), *([tables.days] if with_trades else [])], config.max_gap_days)
    fine = fine.with_columns(_attach_segments(fine, segments))
    out = _base_features(fine, interval, config.spans, resume.bars.get(interval), keep_state, wanted)
    if keep_state:
        states.bars[interval] = out.select("token", "ts", SEGMENT, POS, *EMA_STATE)
    out = out.with_columns(_cut_like(s, out["ts"].chunk_lengths()) for s in _time_of_day(out["ts"], wanted))
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
