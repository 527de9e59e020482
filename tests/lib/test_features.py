import numpy as np
import polars as pl
import pytest
import talib

from alevor_assets import compute_features
from alevor_assets.lib.bars import time_bars
from alevor_assets.lib.features import feature_names
from alevor_assets.lib.synthetic import trades_for_day
from tests.conftest import START, small_config


def _bars_from_closes(closes, highs=None, lows=None, step_s=60):
    n = len(closes)
    closes = np.asarray(closes, dtype=float)
    highs = np.asarray(highs if highs is not None else closes * 1.01)
    lows = np.asarray(lows if lows is not None else closes * 0.99)
    return pl.DataFrame({
        "token": ["T"] * n, "interval": ["1m"] * n,
        "ts": pl.Series(np.arange(n) * step_s * 1_000_000 + 1_704_067_200_000_000).cast(pl.Datetime("us", "UTC")),
        "open": closes, "high": highs, "low": lows, "close": closes,
        "volume": np.ones(n), "quote_volume": closes, "buy_volume": np.full(n, 0.5), "sell_volume": np.full(n, 0.5),
        "trade_count": np.ones(n, dtype=np.int64), "vwap": closes,
    })


def test_rsi_wilder_on_a_series_worked_by_hand():
    # 14 alternating moves of +1/-1 then +2: first average gain = 7/14, loss = 7/14 -> RSI 50;
    # next gain 2: avg gain = (0.5*13 + 2)/14, avg loss = 0.5*13/14.
    closes = [10.0]
    for i in range(14):
        closes.append(closes[-1] + (1 if i % 2 == 0 else -1))
    closes.append(closes[-1] + 2)
    f = compute_features(_bars_from_closes(closes), "1m")
    rsi = f["rsi_14"].to_list()
    assert rsi[:14] == [None] * 14
    assert rsi[14] == pytest.approx(50.0, abs=1e-12)
    g, l = (0.5 * 13 + 2) / 14, 0.5 * 13 / 14
    assert rsi[15] == pytest.approx(100 * g / (g + l), abs=1e-12)


def test_bollinger_uses_population_sigma_by_hand():
    closes = [float(x) for x in range(1, 21)]  # 1..20: mean 10.5, population var (n^2-1)/12
    f = compute_features(_bars_from_closes(closes), "1m")
    sd = np.sqrt((20**2 - 1) / 12)
    assert f["bb_middle"][19] == pytest.approx(10.5)
    assert f["bb_upper"][19] == pytest.approx(10.5 + 2 * sd, rel=1e-12)
    assert f["bb_lower"][19] == pytest.approx(10.5 - 2 * sd, rel=1e-12)
    assert f["bb_middle"][18] is None


def test_macd_seeding_by_hand_on_a_linear_series():
    # On a straight line every SMA seed sits on the line, so both EMAs stay exactly on it:
    # EMA_n of a linear series lags by (n-1)/2 steps -> macd = slope * (26-12)/2 = 7 * slope.
    closes = [100.0 + 0.5 * i for i in range(60)]
    f = compute_features(_bars_from_closes(closes), "1m")
    macd = f["macd"].to_numpy()
    assert np.isnan(macd[32]) and not np.isnan(macd[33])  # TA-Lib's first output is at 33
    np.testing.assert_allclose(macd[33:], 3.5, rtol=1e-12)
    np.testing.assert_allclose(f["macd_signal"].to_numpy()[33:], 3.5, rtol=1e-12)
    np.testing.assert_allclose(f["macd_hist"].to_numpy()[33:], 0.0, atol=1e-12)


def test_atr_wilder_by_hand():
    closes = [10.0] * 16
    highs = [11.0] * 16
    lows = [9.0] * 16
    highs[15], lows[15] = 14.0, 10.0  # true range 4 at the 16th bar
    f = compute_features(_bars_from_closes(closes, highs, lows), "1m")
    atr = f["atr_14"].to_list()
    assert atr[13] is None and atr[14] == pytest.approx(2.0)
    assert atr[15] == pytest.approx((2.0 * 13 + 4.0) / 14)


def test_indicators_equal_talib_on_generated_bars():
    bars = time_bars(trades_for_day(small_config(), START), ["1m"])
    f = compute_features(bars, "1m")
    checked = 0
    for token in bars["token"].unique().to_list():
        b = bars.filter(pl.col("token") == token).sort("ts")
        x = f.filter(pl.col("token") == token).sort("ts")
        if b.height < 40:
            continue
        c, h, lo = (b[k].to_numpy() for k in ("close", "high", "low"))
        macd, sig, hist = talib.MACD(c, 12, 26, 9)
        up, mid, low = talib.BBANDS(c, 20, 2, 2, 0)
        ref = {"rsi_14": talib.RSI(c, 14), "atr_14": talib.ATR(h, lo, c, 14), "macd": macd,
               "macd_signal": sig, "macd_hist": hist, "bb_upper": up, "bb_middle": mid, "bb_lower": low}
        for name, expected in ref.items():
            got = x[name].to_numpy().astype(float)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"{token} {name}")
            scale = np.nanmax(np.abs(c))
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12 * scale, err_msg=f"{token} {name}")
        checked += 1
    assert checked >= 3


def test_rates_use_elapsed_seconds_not_the_interval():
    bars = _bars_from_closes([10.0, 11.0, 12.1], step_s=2)
    bars = bars.with_columns(interval=pl.lit("2s"))
    # Move the third bar ten minutes later: its rate spreads over 600 s, not 2 s.
    bars = bars.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(pl.col("ts") + pl.duration(seconds=598)).otherwise(pl.col("ts")).alias("ts"))
    f = compute_features(bars, "2s")
    assert f["gap_seconds"].to_list() == [None, 2.0, 600.0]
    assert f["volume_rate"].to_list() == pytest.approx([0.5, 0.5, 1 / 600])
    assert f["price_velocity"][2] == pytest.approx(np.log(12.1 / 11.0) / 600)


def test_output_columns_and_no_lookahead():
    bars = time_bars(trades_for_day(small_config(), START), ["2s"])
    full = compute_features(bars, "2s")
    assert full.columns == ["token", "interval", "ts", *feature_names()]
    # Features at time t from bars up to t equal those from all bars: nothing reads the future.
    cut = bars["ts"].sort()[bars.height // 2]
    early = compute_features(bars.filter(pl.col("ts") <= cut), "2s")
    assert early.equals(full.filter(pl.col("ts") <= cut))
