"""Bars from trades: time bars for any interval from 1 s to 1 d, volume bars and dollar bars.

Trades are put in (token, ts, trade_id) order once (nothing to do for a ``raw_trades`` partition,
which is stored in that order); every bar is then a contiguous run of rows, reduced in one
sequential pass by a compiled kernel. That is faster here than a hash ``GROUP BY`` and, unlike
one, exactly reproducible: parallel hash aggregation adds floats in whatever order its threads
finish (DuckDB's ``sum`` gave different last bits on two runs over the same 10 M trades), which
would break byte-identical partition re-runs. Sums run in trade order, the definition of
"volume of the bar".

Bar types, named by the ``interval`` column:

- ``2s``, ``1m``, ``1h``, ... time bars: ``[ts, ts + interval)`` with ``ts`` an epoch multiple of
  the interval; only buckets with trades exist.
- ``volume_<T>``: a bar closes with the trade at which the amount traded since it opened reaches
  ``T`` (base units), together with any further trades in that same microsecond (one execution
  burst is never split, so bars of a token never share a start time); ``dollar_<T>`` the same with
  quote amount (price × amount). The next trade opens a new bar. Bars restart at every UTC day and token, so a day's bars depend on that day's
  trades only; the last bar of a day may hold less than ``T``. ``ts`` is the bar's first trade.

Open and close are the first and last trade by (ts, trade_id).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from numba import njit

from alevor_assets.lib.intervals import interval_us
from alevor_assets.lib.schemas import BAR_COLUMNS, RAW_TRADES_COLUMNS, UTC_US

BAR_SCHEMA: dict[str, pl.DataType] = {
    "token": pl.Utf8,
    "interval": pl.Utf8,
    "ts": UTC_US,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
    "quote_volume": pl.Float64,
    "buy_volume": pl.Float64,
    "sell_volume": pl.Float64,
    "trade_count": pl.Int64,
    "vwap": pl.Float64,
}

_TIME, _VOLUME, _DOLLAR = 0, 1, 2


@dataclass(frozen=True)
class BarSpec:
    """One bar type: ``kind`` is "time", "volume" or "dollar"; ``size`` is the interval in µs
    or the threshold."""

    name: str
    kind: str
    size: float

    @property
    def code(self) -> int:
        return {"time": _TIME, "volume": _VOLUME, "dollar": _DOLLAR}[self.kind]

    @property
    def order(self) -> tuple[int, float]:
        return (self.code, self.size)


def bar_spec(name: str) -> BarSpec:
    """Parse a bar name: ``2s`` .. ``1d``, ``volume_<threshold>`` or ``dollar_<threshold>``."""
    for kind in ("volume", "dollar"):
        if name.startswith(kind + "_"):
            try:
                threshold = float(name[len(kind) + 1 :])
            except ValueError:
                threshold = math.nan
            if not math.isfinite(threshold) or threshold <= 0:
                raise ValueError(f"invalid bar {name!r}: the {kind} threshold must be a positive number")
            return BarSpec(name, kind, threshold)
    return BarSpec(name, "time", float(interval_us(name)))


def threshold_bar_name(kind: str, threshold: float) -> str:
    """``volume_1000``, ``dollar_50000``, ``volume_0.5``: the name a threshold bar is stored under."""
    return f"{kind}_{threshold:g}"


def resample_trades(trades: pl.DataFrame | pl.LazyFrame, interval: str) -> pl.DataFrame:
    """Bars of one type from trades (Polars in, Polars out).

    ``trades`` has the ``raw_trades`` columns (token, trade_id, ts as a UTC datetime, price,
    amount, side) in any row order; ``interval`` is a time interval (``"2s"``, ``"1m"``, ...,
    ``"1d"``) or ``"volume_<T>"`` / ``"dollar_<T>"``. Rows come out sorted by token, then ts.
    """
    return make_bars(trades, [interval])


def time_bars(trades: pl.DataFrame | pl.LazyFrame, intervals: Sequence[str]) -> pl.DataFrame:
    """Several bar types at once (one ordering pass), stacked: time bars finest first, then
    volume and dollar bars."""
    return make_bars(trades, intervals)


def make_bars(trades: pl.DataFrame | pl.LazyFrame, names: Sequence[str]) -> pl.DataFrame:
    specs = sorted({bar_spec(n) for n in names}, key=lambda s: s.order)
    sorted_trades = SortedTrades.from_frame(_prepare(trades))
    return sorted_trades.bars(specs)


@dataclass
class SortedTrades:
    """Trades as arrays in (token, ts, trade_id) order; ``codes`` index ``tokens`` (sorted)."""

    tokens: pl.Series
    codes: np.ndarray
    ts: np.ndarray
    price: np.ndarray
    amount: np.ndarray
    is_buy: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.ts)

    def totals_by_token(self) -> tuple[np.ndarray, np.ndarray]:
        """Trade count and volume per token code (for reconciling bars)."""
        if not hasattr(self, "_totals"):
            n = len(self.tokens)
            self._totals = (np.bincount(self.codes, minlength=n), np.bincount(self.codes, weights=self.amount, minlength=n))
        return self._totals

    @classmethod
    def from_frame(cls, df: pl.DataFrame) -> SortedTrades:
        tokens = df["token"].unique().sort()
        # Token codes in lexical order turn the token part of every comparison into integers.
        codes = df["token"].cast(pl.Enum(tokens)).to_physical().to_numpy()
        ts = df["ts"].dt.epoch("us").to_numpy()
        ids = df["trade_id"].to_numpy()
        arrays = [codes, ts, df["price"].to_numpy(), df["amount"].to_numpy(), (df["side"] == "buy").to_numpy()]
        if not _key_ordered(codes, ts, ids):
            order = _key_order(codes, ts, ids)
            arrays = [a[order] for a in arrays]
        return cls(tokens, *arrays)

    def bars(self, specs: Sequence[BarSpec]) -> pl.DataFrame:
        """Bars of every spec, stacked in the order given."""
        frames = self.bars_by_spec(specs)
        return pl.concat(list(frames.values()), how="vertical") if frames else pl.DataFrame(schema=BAR_SCHEMA)

    def bars_by_spec(self, specs: Sequence[BarSpec], with_codes: bool = False) -> dict[str, pl.DataFrame]:
        """One frame of bars per spec, each sorted by token and ts, from one pass over the trades.
        ``with_codes`` adds ``_code``, the index of each bar's token in ``tokens`` (internal; the
        warehouse never stores ``_`` columns)."""
        if self.rows == 0:
            return {spec.name: pl.DataFrame(schema=BAR_SCHEMA) for spec in specs}
        opens = np.empty((self.rows, len(specs)), dtype=np.bool_)
        token_change = np.empty(self.rows, dtype=np.bool_)
        token_change[0] = True
        np.not_equal(self.codes[1:], self.codes[:-1], out=token_change[1:])
        steps = np.zeros(len(specs), dtype=np.int64)
        for k, spec in enumerate(specs):
            if spec.kind == "time":
                steps[k] = int(spec.size)
                bucket = self.ts // steps[k]
                col = token_change.copy()
                col[1:] |= bucket[1:] != bucket[:-1]
            else:
                day = self.ts // 86_400_000_000
                forced = token_change.copy()
                forced[1:] |= day[1:] != day[:-1]
                weight = self.amount if spec.kind == "volume" else self.price * self.amount
                col = _threshold_opens(forced, weight, self.ts, spec.size)
            opens[:, k] = col
        counts = opens.sum(axis=0)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        code, start, o, h, lo, c, v, q, bv, sv, cnt = _fill_many(
            opens, self.codes, self.ts, self.price, self.amount, self.is_buy, steps, offsets
        )
        out = {}
        for k, spec in enumerate(specs):
            a, b = offsets[k], offsets[k + 1]
            out[spec.name] = pl.DataFrame(
                {
                    "token": self.tokens.gather(code[a:b]),
                    "interval": pl.repeat(spec.name, int(b - a), eager=True, dtype=pl.Utf8),
                    "ts": pl.Series(start[a:b], dtype=pl.Int64).cast(UTC_US),
                    "open": o[a:b], "high": h[a:b], "low": lo[a:b], "close": c[a:b],
                    "volume": v[a:b], "quote_volume": q[a:b], "buy_volume": bv[a:b], "sell_volume": sv[a:b],
                    "trade_count": cnt[a:b],
                    "vwap": q[a:b] / v[a:b],
                },
                schema=BAR_SCHEMA,
            )
            if with_codes:
                out[spec.name] = out[spec.name].with_columns(pl.Series("_code", code[a:b]))
        return out


@njit(cache=True, nogil=True)
def _threshold_opens(forced, weight, ts, threshold):  # pragma: no cover - compiled
    """Rows that open a threshold bar: forced ones (new token or day), and the first row after the
    bar's running weight reached ``threshold`` that has a later timestamp: trades sharing one
    timestamp stay in one bar, so a token's bars never share a start time."""
    opens = forced.copy()
    acc = 0.0
    for i in range(len(weight)):
        if i > 0 and not forced[i] and acc >= threshold and ts[i] != ts[i - 1]:
            opens[i] = True
        if opens[i]:
            acc = 0.0
        acc += weight[i]
    return opens


@njit(cache=True, nogil=True)
def _fill_many(opens, codes, ts, price, amount, is_buy, steps, offsets):  # pragma: no cover - compiled
    """One sequential pass over the trades fills the bars of every spec: OHLC, volumes summed in
    trade order, counts. ``opens[i, k]`` says row ``i`` opens a bar of spec ``k``, whose bars live
    at ``offsets[k]:offsets[k + 1]`` of the flat outputs; ``steps[k]`` aligns a time bar's start
    (0 for threshold bars, which start at their first trade)."""
    n_specs = opens.shape[1]
    total = offsets[n_specs]
    code = np.empty(total, np.int64)
    start = np.empty(total, np.int64)
    o = np.empty(total)
    h = np.empty(total)
    lo = np.empty(total)
    c = np.empty(total)
    v = np.zeros(total)
    q = np.zeros(total)
    bv = np.zeros(total)
    sv = np.zeros(total)
    cnt = np.zeros(total, np.int64)
    pos = offsets[:n_specs].copy() - 1
    for i in range(len(price)):
        p = price[i]
        a = amount[i]
        pa = p * a
        buy = is_buy[i]
        for k in range(n_specs):
            if opens[i, k]:
                j = pos[k] + 1
                pos[k] = j
                code[j] = codes[i]
                start[j] = (ts[i] // steps[k]) * steps[k] if steps[k] > 0 else ts[i]
                o[j] = p
                h[j] = p
                lo[j] = p
            else:
                j = pos[k]
                if p > h[j]:
                    h[j] = p
                elif p < lo[j]:
                    lo[j] = p
            c[j] = p
            v[j] += a
            q[j] += pa
            if buy:
                bv[j] += a
            else:
                sv[j] += a
            cnt[j] += 1
    return code, start, o, h, lo, c, v, q, bv, sv, cnt


def _key_ordered(codes: np.ndarray, ts: np.ndarray, ids: np.ndarray) -> bool:
    if len(ts) < 2:
        return True
    c0, c1, t0, t1, i0, i1 = codes[:-1], codes[1:], ts[:-1], ts[1:], ids[:-1], ids[1:]
    return bool(np.all((c1 > c0) | ((c1 == c0) & ((t1 > t0) | ((t1 == t0) & (i1 >= i0))))))


def _key_order(codes: np.ndarray, ts: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The permutation to (token, ts, trade_id) order (stable for exact duplicates)."""
    time_ordered = len(ts) < 2 or bool(
        np.all((ts[1:] > ts[:-1]) | ((ts[1:] == ts[:-1]) & (ids[1:] >= ids[:-1])))
    )
    if time_ordered:
        # Exchange exports come in time order: a stable sort on the token code alone keeps
        # (ts, trade_id) order within each token, and NumPy radix-sorts 16-bit keys.
        key = codes.astype(np.uint16) if codes.max(initial=0) <= np.iinfo(np.uint16).max else codes
        return np.argsort(key, kind="stable")
    return np.lexsort((ids, ts, codes))


def _prepare(trades: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    df = trades.collect() if isinstance(trades, pl.LazyFrame) else trades
    missing = [c for c in RAW_TRADES_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"trades are missing columns {missing}; expected {RAW_TRADES_COLUMNS}")
    ts_type = df.schema["ts"]
    if not isinstance(ts_type, pl.Datetime) or ts_type.time_zone is None:
        raise ValueError(
            f"trades.ts must be a timezone-aware datetime (UTC), got {ts_type}; "
            "attach the zone explicitly, e.g. pl.col('ts').dt.replace_time_zone('UTC')"
        )
    return df.select(
        pl.col("token").cast(pl.Utf8),
        pl.col("trade_id").cast(pl.Int64),
        pl.col("ts").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
        pl.col("price").cast(pl.Float64),
        pl.col("amount").cast(pl.Float64),
        pl.col("side").cast(pl.Utf8),
    )


def iter_token_batches(path: str | Path, batch_rows: int = 4_000_000) -> Iterator[pl.DataFrame]:
    """A ``raw_trades`` partition file in slices of whole tokens (about ``batch_rows`` each), so a
    huge day is reduced with bounded memory. The file must be in (token, ts, trade_id) order, as
    the warehouse writes it; anything else is an error rather than silently wrong bars."""
    scan = pl.scan_parquet(path).select(RAW_TRADES_COLUMNS)
    total = scan.select(pl.len()).collect().item()
    offset = 0
    last_token: str | None = None
    while offset < total:
        # Polars reads only the row groups a slice touches.
        piece = scan.slice(offset, batch_rows).collect()
        if offset + piece.height < total:
            # Tokens are sorted: rows before the last token's first row are whole tokens.
            cut = int(piece["token"].search_sorted(piece["token"][-1], side="left"))
            piece = piece.slice(0, cut) if cut else scan.slice(offset, total - offset).filter(pl.col("token") == piece["token"][-1]).collect()
        last_token = _check_batch_order(piece, last_token, path)
        offset += piece.height
        yield piece


def _check_batch_order(batch: pl.DataFrame, previous_last: str | None, path: str | Path) -> str:
    tok = batch["token"]
    first, last = tok[0], tok[-1]
    ordered = (previous_last is None or first > previous_last) and tok.is_sorted()
    if not ordered:
        raise ValueError(f"{path} is not in (token, ts, trade_id) order; rewrite it through the warehouse")
    return last


def bars_columns() -> list[str]:
    return list(BAR_COLUMNS)


__all__ = ["BAR_SCHEMA", "BarSpec", "bar_spec", "make_bars", "resample_trades", "time_bars"]
