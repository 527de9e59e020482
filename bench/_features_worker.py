"""One features measurement: ``python -m bench._features_worker ENGINE SIZE``.

ENGINE: alevor_base (compute_features on 2 s bars alone: bar-count and wall-clock families, TA
indicators), alevor_full (plus rush-trade and La Morgia features from the trades and
multi-timeframe context from 1 m / 5 m / 1 h bars), pandas (core features written the way users
do today: groupby(token) with shift/rolling/ewm), alevor_pandas_set (compute_features asked for
exactly the columns pandas computes). Each runs twice; both times reported.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import polars as pl

from bench._data import home, trades_path
from bench._measure import report


def bars_path(size: str, interval: str):
    path = home(size) / f"bench_bars_{interval}.parquet"
    if not path.exists():
        from alevor_assets import resample_trades

        resample_trades(pl.read_parquet(trades_path(size)), interval).write_parquet(path)
    return path


# The columns pandas_features computes, under the names compute_features gives them.
PANDAS_SET = (
    "return_1", "log_return_1", "return_5", "log_return_5", "return_15", "log_return_15", "return_60", "log_return_60",
    "realized_vol_5", "realized_vol_15", "realized_vol_60", "price_velocity", "price_acceleration", "volume_rate",
    "trade_rate", "volume_zscore_15", "volume_zscore_60", "buy_sell_imbalance", "vwap_distance", "hl_range", "rsi_14",
    "macd", "macd_signal", "bb_upper", "bb_middle", "bb_lower", "atr_14", "momentum_short", "momentum_long",
)


def pandas_features(bars) -> int:
    import pandas as pd

    df = bars.sort_values(["token", "ts"]).reset_index(drop=True)
    g = df.groupby("token", sort=False)
    out = pd.DataFrame(index=df.index)
    c, h, lo = df["close"], df["high"], df["low"]
    gap = g["ts"].diff().dt.total_seconds()
    elapsed = gap.fillna(2.0)
    for k in (1, 5, 15, 60):
        prev = g["close"].shift(k)
        out[f"return_{k}"] = c / prev - 1
        out[f"log_return_{k}"] = np.log(c / prev)
    lr = out["log_return_1"]
    for k in (5, 15, 60):
        out[f"realized_vol_{k}"] = np.sqrt((lr**2).groupby(df["token"]).rolling(k).sum().reset_index(level=0, drop=True))
    out["price_velocity"] = lr / elapsed
    out["price_acceleration"] = out["price_velocity"].groupby(df["token"]).diff() / elapsed
    vr = df["volume"] / elapsed
    out["volume_rate"] = vr
    out["trade_rate"] = df["trade_count"] / elapsed
    for k in (15, 60):
        roll = vr.groupby(df["token"]).rolling(k)
        m = roll.mean().reset_index(level=0, drop=True)
        s = roll.std(ddof=0).reset_index(level=0, drop=True)
        out[f"volume_zscore_{k}"] = (vr - m) / s
    out["buy_sell_imbalance"] = (df["buy_volume"] - df["sell_volume"]) / df["volume"]
    out["vwap_distance"] = c / df["vwap"] - 1
    out["hl_range"] = (h - lo) / c
    diff = g["close"].diff()
    gain, loss = diff.clip(lower=0), (-diff).clip(lower=0)
    ag = gain.groupby(df["token"]).transform(lambda x: x.ewm(alpha=1 / 14, adjust=False).mean())
    al = loss.groupby(df["token"]).transform(lambda x: x.ewm(alpha=1 / 14, adjust=False).mean())
    out["rsi_14"] = 100 * ag / (ag + al)
    e12 = g["close"].transform(lambda x: x.ewm(span=12, adjust=False).mean())
    e26 = g["close"].transform(lambda x: x.ewm(span=26, adjust=False).mean())
    out["macd"] = e12 - e26
    out["macd_signal"] = out["macd"].groupby(df["token"]).transform(lambda x: x.ewm(span=9, adjust=False).mean())
    roll20 = c.groupby(df["token"]).rolling(20)
    mid = roll20.mean().reset_index(level=0, drop=True)
    sd = roll20.std(ddof=0).reset_index(level=0, drop=True)
    out["bb_upper"], out["bb_middle"], out["bb_lower"] = mid + 2 * sd, mid, mid - 2 * sd
    prev_c = g["close"].shift(1)
    tr = pd.concat([h - lo, (h - prev_c).abs(), (lo - prev_c).abs()], axis=1).max(axis=1)
    out["atr_14"] = tr.groupby(df["token"]).transform(lambda x: x.ewm(alpha=1 / 14, adjust=False).mean())
    out["momentum_short"] = c / c.groupby(df["token"]).rolling(10).mean().reset_index(level=0, drop=True) - 1
    out["momentum_long"] = c / c.groupby(df["token"]).rolling(50).mean().reset_index(level=0, drop=True) - 1
    assert sorted(out.columns) == sorted(PANDAS_SET), "PANDAS_SET names what pandas_features computes"
    return out.shape[1]


def main(engine: str, size: str) -> dict:
    bars = pl.read_parquet(bars_path(size, "2s"))
    if engine == "pandas":
        frame = bars.to_pandas()
        run = lambda: pandas_features(frame)  # noqa: E731
    else:
        from alevor_assets import compute_features
        from alevor_assets.lib.features import FeatureConfig

        if engine == "alevor_base":
            config = FeatureConfig(multi_timeframe=(), rush_chunks={})
            run = lambda: compute_features(bars, "2s", config=config).width - 3  # noqa: E731
        elif engine == "alevor_pandas_set":
            run = lambda: compute_features(bars, "2s", columns=PANDAS_SET).width - 3  # noqa: E731
        else:
            trades = pl.read_parquet(trades_path(size))
            context = pl.concat([bars, *(pl.read_parquet(bars_path(size, i)) for i in ("1m", "5m", "1h"))])
            run = lambda: compute_features(context, "2s", trades=trades).width - 3  # noqa: E731
    timings, columns = [], 0
    for _ in range(2):
        started = time.monotonic()
        columns = run()
        timings.append(time.monotonic() - started)
    return {"first_s": timings[0], "seconds": timings[1], "rows": bars.height, "features": columns}


if __name__ == "__main__":
    report({"engine": sys.argv[1], "size": sys.argv[2], **main(sys.argv[1], sys.argv[2])})
