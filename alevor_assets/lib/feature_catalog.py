"""The feature catalog: every feature's name, definition, unit and window, and the configurable
windows of the feature families. ``compute_features`` (``lib/features.py``) produces exactly
these columns; the README's table is generated from here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from alevor_assets.lib.intervals import DAY_US, duration_us, interval_us, sort_intervals
from alevor_assets.lib.schemas import UTC_US

KEYS = ["token", "interval", "ts"]
HORIZONS = (1, 5, 15, 60)
DEFAULT_SPANS = ("30s", "5m", "1h")
DEFAULT_MULTI_TIMEFRAME = ("1m", "5m", "1h")
# La Morgia et al.: chunk size -> rolling window in non-empty chunks; price levels use 10.
DEFAULT_RUSH_CHUNKS = {"5s": 700, "15s": 900, "25s": 900}
LM_PRICE_WINDOW = 10
# A token silent for this long starts a new series (README "Features": why a week).
DEFAULT_MAX_GAP = "7d"
MTF_FEATURES = (
    "return_1", "return_15", "rsi_14", "realized_vol_15", "volume_zscore_15", "macd_hist_pct",
    "bb_percent_b", "atr_pct", "buy_sell_imbalance",
)
LM_FEATURES = (
    "std_rush_order", "avg_rush_order", "std_trades", "std_volume", "avg_volume", "std_price",
    "avg_price", "avg_price_max",
)


@dataclass(frozen=True)
class FeatureConfig:
    """Windows of the configurable families (``features:`` in pipeline.yaml)."""

    spans: tuple[str, ...] = DEFAULT_SPANS
    multi_timeframe: tuple[str, ...] = DEFAULT_MULTI_TIMEFRAME
    rush_chunks: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_RUSH_CHUNKS))
    max_gap: str = DEFAULT_MAX_GAP

    def __post_init__(self) -> None:
        self.max_gap_days  # noqa: B018 - validates the setting where it is made

    @property
    def max_gap_days(self) -> int:
        """``max_gap`` in whole UTC days: a token without a trade on this many consecutive days
        starts a new series (every window, return and EMA restarts after the silence)."""
        us = duration_us(self.max_gap)
        if us % DAY_US:
            raise ValueError(f"features.max_gap must be whole days such as '7d', got {self.max_gap!r}")
        return us // DAY_US

    def coarser(self, interval: str) -> list[str]:
        """Multi-timeframe intervals strictly coarser than ``interval``."""
        return [j for j in sort_intervals(list(self.multi_timeframe)) if interval_us(j) > interval_us(interval)]


@dataclass(frozen=True)
class FeatureDoc:
    name: str
    definition: str
    unit: str
    window: str


_BASE_DOCS: tuple[FeatureDoc, ...] = (
    FeatureDoc("gap_seconds", "seconds since the token's previous bar started (null for the first bar of a series)", "s", "1 bar"),
    FeatureDoc("elapsed_seconds", "gap_seconds, or the interval length for a series' first bar; the time base of every rate", "s", "1 bar"),
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

    FeatureDoc("rush_trade_share", "share of the bar's trades that share their millisecond with another trade of the token (rush / multi-fill orders); null without trades", "ratio", "1 bar"),
    FeatureDoc("rush_buy_orders", "buy timestamps in the bar with more than one trade (La Morgia's rush orders); null without trades", "count", "1 bar"),
    FeatureDoc("hour_sin", "sin(2π · hour / 24) of the bar's start (UTC)", "-", "-"),
    FeatureDoc("hour_cos", "cos(2π · hour / 24)", "-", "-"),
    FeatureDoc("minute_sin", "sin(2π · minute / 60)", "-", "-"),
    FeatureDoc("minute_cos", "cos(2π · minute / 60)", "-", "-"),
)

# Families: "<span>", "<chunk>" and "<coarser>" expand with the configured windows.
_FAMILY_DOCS: tuple[FeatureDoc, ...] = (
    FeatureDoc("return_<span>", "close / the last close of a bar that started at least <span> earlier - 1 (null if none in the data)", "ratio", "<span> of wall-clock time"),
    FeatureDoc("realized_vol_<span>", "sqrt of the sum of squared 1-bar log returns of the bars that started in the last <span>", "log", "<span>"),
    FeatureDoc("volume_rate_<span>", "volume of the bars that started in the last <span>, per second of <span>", "base units/s", "<span>"),
    FeatureDoc("trade_rate_<span>", "trades of the bars that started in the last <span>, per second of <span>", "trades/s", "<span>"),
    *(FeatureDoc(f"lm_<chunk>_{f}", d, u, "last complete <chunk> chunk; rolling over non-empty chunks") for f, d, u in (
        ("std_rush_order", "percent change of the rolling std (ddof 1) of rush orders per chunk (buy timestamps with more than one trade)", "ratio"),
        ("avg_rush_order", "percent change of the rolling mean of rush orders per chunk", "ratio"),
        ("std_trades", "percent change of the rolling std of buy trades per chunk", "ratio"),
        ("std_volume", "percent change of the rolling std of buy quote volume per chunk", "ratio"),
        ("avg_volume", "percent change of the rolling mean of buy quote volume per chunk", "ratio"),
        ("std_price", "percent change of the rolling std of the mean buy price per chunk", "ratio"),
        ("avg_price", "percent change of the 10-chunk mean of the mean buy price", "ratio"),
        ("avg_price_max", "percent change of the 10-chunk mean of the max buy price", "ratio"),
    )),
    *(FeatureDoc(f"mtf_<coarser>_{f}", f"{f} of the last complete <coarser> bar (its end at or before this bar's end)", "as " + f, "<coarser> bars") for f in MTF_FEATURES),
)


def feature_docs() -> tuple[FeatureDoc, ...]:
    """Every documented feature or family (the README table)."""
    return (*_BASE_DOCS, *_FAMILY_DOCS)


def feature_names(interval: str = "2s", config: FeatureConfig | None = None) -> list[str]:
    """The columns ``compute_features`` produces for ``interval`` (after the keys), in order."""
    config = config or FeatureConfig()
    names = [d.name for d in _BASE_DOCS]
    for d in _FAMILY_DOCS:
        if "<span>" in d.name:
            names += [d.name.replace("<span>", s) for s in config.spans]
    for chunk in config.rush_chunks:
        names += [f"lm_{chunk}_{f}" for f in LM_FEATURES]
    for j in config.coarser(interval):
        names += [f"mtf_{j}_{f}" for f in MTF_FEATURES]
    return names


def feature_schema(interval: str = "2s", config: FeatureConfig | None = None) -> dict[str, pl.DataType]:
    """The exact columns and types of ``compute_features`` output for ``interval`` (an empty
    partition of a day without trades has them too)."""
    return {"token": pl.Utf8, "interval": pl.Utf8, "ts": UTC_US, **{n: pl.Float64 for n in feature_names(interval, config)}}


def feature_table_markdown() -> str:
    """The README's feature table."""
    rows = ["| feature | definition | unit | window |", "|---|---|---|---|"]
    for d in feature_docs():
        rows.append(f"| `{d.name}` | {d.definition} | {d.unit} | {d.window} |")
    return "\n".join(rows)
