"""Features computed from the trades behind the bars, and the series they belong to.

Rush trades (several trades of a token in one millisecond) per bar, the La Morgia et al. (2020)
chunk features ``lm_<chunk>_*`` over buy-trade chunks, and :func:`series_segments`: where a token's
series restarts after a silence longer than ``features.max_gap``, which every family (bars of each
interval, La Morgia chunks, coarser bars) must agree on. ``lib/features.py`` assembles them with the
bar features; each pass over the trades is sequential, like the bar kernel.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import polars as pl

from alevor_assets.lib import feature_kernels as fk
from alevor_assets.lib.bars import SortedTrades
from alevor_assets.lib.feature_catalog import LM_PRICE_WINDOW
from alevor_assets.lib.intervals import DAY_US, interval_us
from alevor_assets.lib.schemas import UTC_US

# Series restart after a token's silence (features.max_gap); _NO_GAP never restarts.
SEGMENT = "_seg"


def series_segments(frames: Sequence[pl.DataFrame], max_gap_days: int) -> pl.DataFrame:
    """``token, _day, _seg``: for every UTC day on which a token has rows in any of ``frames``
    (each with ``token`` and ``ts``), the id of its series. A token's series restarts after
    ``max_gap_days`` consecutive days without rows, so every family (bars of each interval, La
    Morgia chunks, coarser bars) agrees on where a series starts; ids increase with token and day.
    """
    days = pl.concat(
        [_day_runs(f.select("token", (pl.col("ts").dt.epoch("us") // DAY_US).alias("_day")))[0] for f in frames if f.height]
        or [pl.DataFrame(schema={"token": pl.Utf8, "_day": pl.Int64})]
    ).unique().sort("token", "_day")
    new = (pl.col("token") != pl.col("token").shift(1)) | (pl.col("_day") - pl.col("_day").shift(1) > max_gap_days)
    return days.with_columns(new.fill_null(True).cum_sum().cast(pl.Int64).alias(SEGMENT))


def _attach_segments(frame: pl.DataFrame, segments: pl.DataFrame, time_us: pl.Expr | None = None) -> pl.Series:
    """The series id of each row of ``frame`` (by its token and the UTC day of ``time_us``, the
    row's ``ts`` by default)."""
    day = ((time_us if time_us is not None else pl.col("ts").dt.epoch("us")) // DAY_US).alias("_day")
    runs, run_of_row = _day_runs(frame.select("token", day))
    keyed = runs.join(segments, on=["token", "_day"], how="left", maintain_order="left")
    return keyed[SEGMENT].gather(run_of_row)


def _run_starts(keys: pl.DataFrame) -> pl.Series:
    """Whether each row of ``keys`` starts a run of equal rows (differs from the row before).
    Rows come in (token, ts) order almost always, so a day of a token is one run: hashing the
    runs, not millions of rows, keeps joins and uniques off the features' critical path."""
    differs = pl.any_horizontal([pl.col(c) != pl.col(c).shift(1) for c in keys.columns]).fill_null(True)
    return keys.select(differs.alias("_new"))["_new"]


def _day_runs(keys: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """The runs of equal (token, _day) in ``keys`` (one row each, in order) and each row's run."""
    starts = _run_starts(keys)
    return keys.filter(starts), (starts.cast(pl.Int64).cum_sum() - 1).alias("_run")


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(values, dtype=np.float64)
    return fk.infinite_to_nan(values if values.flags.writeable else values.copy())


def _segment_sums(st: SortedTrades, mask: np.ndarray | None, step_us: int, *weights: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per (token, bucket) of ``step_us`` over the rows in ``mask`` (None: all): code, start,
    count, Σprice, max price, and Σ of each of ``weights``; one sequential pass, like the bars."""
    if mask is not None and mask.all():
        mask = None  # every row: no copies

    def rows(x: np.ndarray) -> np.ndarray:
        return x if mask is None else x[mask]

    w = np.vstack([rows(np.asarray(x, np.float64)) for x in weights]) if weights else np.zeros((0, len(rows(st.ts))))
    code, start, cnt, price_sum, high, sums = fk.bucket_sums(rows(st.codes), rows(st.ts), rows(st.price), w, step_us)
    return (code, start, cnt, price_sum, high, *sums)


def _rush_flags(st: SortedTrades) -> tuple[np.ndarray, np.ndarray]:
    """Per trade: shares its millisecond with another trade of the token; and first trade of a
    buy millisecond with more than one buy (one rush order)."""
    ms = st.ts // 1000
    same_prev = np.zeros(st.rows, dtype=np.bool_)
    same_prev[1:] = (st.codes[1:] == st.codes[:-1]) & (ms[1:] == ms[:-1])
    same_next = np.append(same_prev[1:], False)
    shared = same_prev | same_next
    # Buy trades only, grouped by millisecond: a group of two or more is one rush order.
    b = st.is_buy
    bcode, bms = st.codes[b], ms[b]
    first = np.ones(len(bms), dtype=np.bool_)
    first[1:] = (bcode[1:] != bcode[:-1]) | (bms[1:] != bms[:-1])
    group_size = np.diff(np.append(np.flatnonzero(first), len(bms)))
    rush_first_b = np.zeros(len(bms), dtype=np.bool_)
    rush_first_b[np.flatnonzero(first)[group_size > 1]] = True
    rush_first = np.zeros(st.rows, dtype=np.bool_)
    rush_first[np.flatnonzero(b)] = rush_first_b
    return shared, rush_first


def _rush_per_bar(st: SortedTrades, flags: tuple[np.ndarray, np.ndarray], interval: str) -> pl.DataFrame:
    shared, rush_first = flags
    step = interval_us(interval)
    code, start, cnt, _, _, shared_sum, rush_sum = _segment_sums(st, None, step, shared, rush_first)
    return pl.DataFrame({
        "token": st.tokens.gather(code),
        "ts": pl.Series(start, dtype=pl.Int64).cast(UTC_US),
        "rush_trade_share": shared_sum / cnt,
        "rush_buy_orders": rush_sum,
    })


def _pct_change(x: np.ndarray, start: np.ndarray) -> np.ndarray:
    return x / fk.shifted(x, start, 1) - 1.0


CHUNK_SCHEMA = {"token": pl.String, "start": pl.Int64, "cnt": pl.Int64, "quote": pl.Float64,
                "price_sum": pl.Float64, "price_max": pl.Float64, "rush": pl.Float64}
RUSH_SCHEMA = {"token": pl.String, "ts": UTC_US, "rush_trade_share": pl.Float64, "rush_buy_orders": pl.Float64}


def chunk_sums(st: SortedTrades, rush_first: np.ndarray, chunk: str) -> pl.DataFrame:
    """Per non-empty buy-trade chunk (``start`` in epoch microseconds): count, quote volume,
    Σprice, max price, rush orders. A chunk's sums read its own trades only."""
    step = interval_us(chunk)
    code, start, cnt, price_sum, price_max, quote, rush = _segment_sums(st, st.is_buy, step, st.price * st.amount, rush_first)
    return pl.DataFrame({"token": st.tokens.gather(code), "start": start, "cnt": cnt, "quote": quote,
                         "price_sum": price_sum, "price_max": price_max, "rush": rush}, schema=CHUNK_SCHEMA)


class TradeTables:
    """What the trade families read from the trades, each table computed once: the UTC days each
    token traded on (``token, ts``: where series restart), rush counts per bar of an interval and
    La Morgia sums per chunk size. Every row depends on the trades of its own bar or chunk only,
    so the live path keeps tables grown bar by bar (passed to the constructor) that equal those
    of all the trades at once (``of``)."""

    def __init__(self, days: pl.DataFrame, rush: dict[str, pl.DataFrame] | None = None,
                 chunks: dict[str, pl.DataFrame] | None = None, trades: SortedTrades | None = None):
        self.days, self._rush, self._chunks = days, dict(rush or {}), dict(chunks or {})
        self._st = trades
        self._flags: tuple[np.ndarray, np.ndarray] | None = None
        self._buy_rows: tuple[SortedTrades, np.ndarray] | None = None
        self._lock = threading.Lock()  # families computed in threads share the flags and buys

    @classmethod
    def of(cls, trades: pl.DataFrame) -> TradeTables:
        return cls(cls.days_of(trades), trades=SortedTrades.from_frame(trades.select("token", "trade_id", "ts", "price", "amount", "side")))

    @staticmethod
    def days_of(trades: pl.DataFrame) -> pl.DataFrame:
        """``token, ts``: the UTC days each token traded on."""
        days = trades.select("token", pl.col("ts").dt.truncate("1d"))
        return days.filter(_run_starts(days)).unique()  # 0.08 against 0.3 s for 10 M trades

    def __bool__(self) -> bool:
        return self.days.height > 0

    def flags(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if self._flags is None:
                assert self._st is not None
                self._flags = _rush_flags(self._st)
        return self._flags

    def rush(self, interval: str) -> pl.DataFrame:
        if interval not in self._rush:
            self._rush[interval] = (_rush_per_bar(self._st, self.flags(), interval) if self._st is not None
                                    else pl.DataFrame(schema=RUSH_SCHEMA))
        return self._rush[interval]

    def chunks(self, chunk: str) -> pl.DataFrame:
        if chunk not in self._chunks:
            self._chunks[chunk] = chunk_sums(*self._buys(), chunk) if self._st is not None else pl.DataFrame(schema=CHUNK_SCHEMA)
        return self._chunks[chunk]

    def _buys(self) -> tuple[SortedTrades, np.ndarray]:
        """The buy trades and their rush flags, taken once for every chunk size."""
        rush_first = self.flags()[1]
        with self._lock:
            if self._buy_rows is None:
                st, b = self._st, self._st.is_buy
                self._buy_rows = (SortedTrades(st.tokens, st.codes[b], st.ts[b], st.price[b], st.amount[b], st.is_buy[b]), rush_first[b])
        return self._buy_rows


LM_VALUES = ("rush", "trades", "volume", "price_mean", "price_max")
LM_STATE = tuple(f"_{v}_{part}" for v in LM_VALUES for part in ("ref", "p1", "p2"))


def _la_morgia(sums: pl.DataFrame, chunk: str, window: int, segments: pl.DataFrame,
               resume: pl.DataFrame | None = None, keep_state: bool = False) -> pl.DataFrame:
    """The La Morgia et al. features on buy-trade chunks (their ``sums``, in token and time
    order), keyed by chunk end; the rolling windows run over a series' non-empty chunks and
    restart with it. ``resume`` (``token, start`` and :data:`LM_STATE`): series whose first chunk
    passed lies inside a longer series, with the window sums there; ``keep_state`` adds
    ``start`` and :data:`LM_STATE` to the output."""
    step = interval_us(chunk)
    start = sums["start"].to_numpy()
    cnt = sums["cnt"].to_numpy()
    chunks = sums.select("token", (pl.col("start") + step).alias("_end"))
    # A chunk belongs to the series of the day it starts on; its windows are anchored on days.
    chunks = chunks.with_columns(_attach_segments(chunks, segments, pl.col("_end") - step))
    series = fk.segment_starts(chunks[SEGMENT].to_numpy())
    day = start // DAY_US
    values = {"rush": sums["rush"].to_numpy(), "trades": cnt.astype(np.float64), "volume": sums["quote"].to_numpy(),
              "price_mean": sums["price_sum"].to_numpy() / np.maximum(cnt, 1), "price_max": sums["price_max"].to_numpy()}
    _, init = resumed_heads(sums, "start", series, resume, LM_STATE)
    prefix = {name: fk.anchored_prefix(np.ascontiguousarray(x, dtype=np.float64), day, series,
                                       init[f"_{name}_ref"], init[f"_{name}_p1"], init[f"_{name}_p2"])
              for name, x in values.items()}
    stats = {name: fk.anchored_mean_std(*prefix[name], series, window) for name in values}
    short = {name: fk.anchored_mean_std(*prefix[name], series, LM_PRICE_WINDOW)[0] for name in ("price_mean", "price_max")}
    p = f"lm_{chunk}_"
    with np.errstate(divide="ignore", invalid="ignore"):
        features = {
            "std_rush_order": _pct_change(stats["rush"][1], series),
            "avg_rush_order": _pct_change(stats["rush"][0], series),
            "std_trades": _pct_change(stats["trades"][1], series),
            "std_volume": _pct_change(stats["volume"][1], series),
            "avg_volume": _pct_change(stats["volume"][0], series),
            "std_price": _pct_change(stats["price_mean"][1], series),
            "avg_price": _pct_change(short["price_mean"], series),
            "avg_price_max": _pct_change(short["price_max"], series),
        }
    out = chunks.with_columns([pl.Series(p + k, _finite(v), dtype=pl.Float64, nan_to_null=True) for k, v in features.items()])
    if keep_state:
        out = out.with_columns(sums["start"], *[pl.Series(f"_{name}_{part}", prefix[name][i], dtype=pl.Float64)
                                               for name in LM_VALUES for i, part in enumerate(("ref", "p1", "p2"))])
    return out


def resumed_heads(frame: pl.DataFrame, key: str, start: np.ndarray, resume: pl.DataFrame | None,
                  columns: Sequence[str]) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    """The rows of ``resume`` that are the first row passed of a series of ``frame`` (same token
    and ``key``), with ``_row``, their index in ``frame``; and per column of ``columns``, their
    values on those rows (NaN elsewhere)."""
    n = frame.height
    init = {k: np.full(n, np.nan) for k in columns}
    if resume is None or resume.height == 0 or n == 0:
        return pl.DataFrame(), init
    heads = frame.select("token", key).with_row_index("_row").filter(pl.Series(start == np.arange(n)))
    hit = heads.join(resume, on=["token", key], how="inner")
    rows = hit["_row"].to_numpy().astype(np.int64)
    for k in columns:
        init[k][rows] = hit[k].to_numpy()
    return hit, init


def chunk_resume_points(state: pl.DataFrame, chunk: str, window: int, needed_after_us: int) -> pl.DataFrame:
    """Per token, a chunk of ``state`` (``_la_morgia`` output with its state, in token and time
    order) from which a later computation can resume and still give exactly every chunk that a
    bar ending after ``needed_after_us`` reads: the last chunk ending by then, and all later ones.
    That chunk's window and the one before it (a percent change) start ``window`` chunks back, so
    the resume chunk is one earlier still, in the same series. Tokens with no such chunk (or no
    chunk ending by then) are left out (they keep their earlier one)."""
    rows = state.with_columns(pl.int_range(pl.len()).over("token").alias("_i"))
    anchor = rows.filter(pl.col("_end") <= needed_after_us).group_by("token").agg(
        pl.col("_i").max().alias("_anchor"), pl.col(SEGMENT).last().alias("_anchor_seg"))
    found = rows.join(anchor, on="token").filter(
        (pl.col("_i") == pl.col("_anchor") - window - 1) & (pl.col(SEGMENT) == pl.col("_anchor_seg")))
    return found.select("token", "start", *LM_STATE)
