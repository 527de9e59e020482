from datetime import datetime, timezone

import numpy as np
import pandas as pd
import polars as pl
import pytest
import talib

from alevor_assets import compute_features, resample_trades
from alevor_assets.lib.bars import time_bars
from alevor_assets.lib.features import FeatureConfig, feature_names, feature_schema
from alevor_assets.lib.schemas import UTC_US
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


def _bars(interval, rows):
    """rows: (seconds since T0, close, volume)."""
    t0 = 1_704_067_200_000_000
    n = len(rows)
    return pl.DataFrame({
        "token": ["T"] * n, "interval": [interval] * n,
        "ts": pl.Series([t0 + int(s * 1e6) for s, _, _ in rows]).cast(pl.Datetime("us", "UTC")),
        "open": [c for _, c, _ in rows], "high": [c for _, c, _ in rows], "low": [c for _, c, _ in rows],
        "close": [c for _, c, _ in rows], "volume": [v for _, _, v in rows], "quote_volume": [c * v for _, c, v in rows],
        "buy_volume": [v / 2 for _, _, v in rows], "sell_volume": [v / 2 for _, _, v in rows],
        "trade_count": [1] * n, "vwap": [c for _, c, _ in rows],
    })


def test_multi_timeframe_uses_only_complete_coarser_bars():
    fine = _bars("2s", [(s, 100.0 + s, 1.0) for s in range(0, 180, 2)])
    coarse = _bars("1m", [(0, 100.0, 1.0), (60, 110.0, 1.0), (120, 150.0, 1.0)])
    f = compute_features(pl.concat([fine, coarse]), "2s", config=FeatureConfig(multi_timeframe=("1m",)))
    got = dict(zip([int(t.timestamp()) - 1_704_067_200 for t in f["ts"]], f["mtf_1m_return_1"]))
    # Before the first minute closes (bar ends <= 60 s) nothing is complete.
    assert all(got[s] is None for s in range(0, 58, 2))
    # The 2 s bar [58, 60) ends with the first minute: the minute bar [0, 60) is complete, but it
    # has no previous minute, so its return_1 is null; from [118, 120) on, [60, 120) is complete.
    assert got[58] is None and got[116] is None
    assert got[118] == pytest.approx(110 / 100 - 1)
    assert got[178] == pytest.approx(150 / 110 - 1)
    # Changing a later coarse bar never changes an earlier fine row (no look-ahead).
    changed = coarse.with_columns(pl.when(pl.col("close") == 150.0).then(999.0).otherwise(pl.col("close")).alias("close"))
    f2 = compute_features(pl.concat([fine, changed]), "2s", config=FeatureConfig(multi_timeframe=("1m",)))
    assert f2.filter(pl.col("ts") < f2["ts"][89]).equals(f.filter(pl.col("ts") < f["ts"][89]))


def test_time_span_features_by_hand():
    bars = _bars("2s", [(0, 100.0, 1.0), (2, 101.0, 2.0), (30, 102.0, 3.0), (600, 120.0, 4.0)])
    f = compute_features(bars, "2s", config=FeatureConfig(spans=("30s",), multi_timeframe=()))
    # return_30s at 30 s: last bar that started at or before 0 s closed at 100.
    assert f["return_30s"].to_list()[:3] == [None, None, pytest.approx(102 / 100 - 1)]
    assert f["return_30s"][3] == pytest.approx(120 / 102 - 1)
    # Volume of bars started in (t - 30 s, t], per second of the span.
    assert f["volume_rate_30s"].to_list() == pytest.approx([1 / 30, 3 / 30, 5 / 30, 4 / 30])


def test_rush_trade_features_by_hand():
    t0 = 1_704_067_200_000_000
    trades = pl.DataFrame(
        [("T", 1, t0 + 1000, 1.0, 1.0, "buy"), ("T", 2, t0 + 1000, 1.0, 1.0, "buy"), ("T", 3, t0 + 1000, 1.0, 1.0, "buy"),
         ("T", 4, t0 + 5000, 1.0, 1.0, "sell"), ("T", 5, t0 + 5000, 1.0, 1.0, "sell"), ("T", 6, t0 + 9000, 1.0, 1.0, "buy")],
        schema={"token": pl.Utf8, "trade_id": pl.Int64, "ts": pl.Int64, "price": pl.Float64, "amount": pl.Float64, "side": pl.Utf8},
        orient="row",
    ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
    bars = resample_trades(trades, "2s")
    f = compute_features(bars, "2s", trades=trades, config=FeatureConfig(multi_timeframe=()))
    # 5 of 6 trades share their millisecond; one buy millisecond holds 3 buys: one rush order.
    assert f["rush_trade_share"].to_list() == [pytest.approx(5 / 6)]
    assert f["rush_buy_orders"].to_list() == [1.0]


def test_la_morgia_features_equal_a_pandas_reading_of_the_paper():
    trades = trades_for_day(small_config(), START)
    cfg = FeatureConfig(multi_timeframe=(), rush_chunks={"5s": 50})
    bars = resample_trades(trades, "1m")
    ours = compute_features(bars, "1m", trades=trades, config=cfg)
    token = ours.group_by("token").len().sort("len")["token"][-1]
    buy = trades.filter((pl.col("token") == token) & (pl.col("side") == "buy")).to_pandas().set_index("ts")
    per_ms = buy.groupby(level=0).size()
    rush = (per_ms > 1).astype(float).groupby(pd.Grouper(freq="5s")).sum()
    g = buy.groupby(pd.Grouper(freq="5s"))
    count, vol = g["price"].count(), (buy.price * buy.amount).groupby(pd.Grouper(freq="5s")).sum()
    keep = count > 0
    rush, count, vol, pmean = rush[keep], count[keep], vol[keep], g["price"].mean()[keep]
    ref = pd.DataFrame({
        "lm_5s_std_rush_order": rush.rolling(50).std().pct_change(fill_method=None),
        "lm_5s_std_trades": count.astype(float).rolling(50).std().pct_change(fill_method=None),
        "lm_5s_avg_volume": vol.rolling(50).mean().pct_change(fill_method=None),
        "lm_5s_std_price": pmean.rolling(50).std().pct_change(fill_method=None),
        "lm_5s_avg_price": pmean.rolling(10).mean().pct_change(fill_method=None),
    })
    ref.index = ref.index + pd.Timedelta(seconds=5)  # a chunk is known at its end
    mine = ours.filter(pl.col("token") == token).to_pandas().set_index("ts")
    bar_end = mine.index + pd.Timedelta(minutes=1)
    expected = ref.reindex(ref.index.union(bar_end)).ffill().reindex(bar_end)
    for col in ref.columns:
        e, m = expected[col].to_numpy(), mine[col].to_numpy()
        both = np.isfinite(e) & ~np.isnan(m)
        assert both.sum() > 50, col
        np.testing.assert_allclose(m[both], e[both], rtol=1e-9, atol=1e-12, err_msg=col)


def test_a_token_silent_longer_than_max_gap_starts_a_new_series():
    # Three buys a minute apart on Jan 1, eleven days of silence, then a sell and two buys on Jan 12.
    def trade(day, minute, price, side):
        ts = int(datetime(2024, 1, day, 0, minute, 10, tzinfo=timezone.utc).timestamp() * 1e6)
        return ("T", day * 100 + minute, ts, price, 1.0, side)

    rows = [trade(1, 0, 100.0, "buy"), trade(1, 1, 110.0, "buy"), trade(1, 2, 121.0, "buy"),
            trade(12, 0, 242.0, "sell"), trade(12, 1, 266.2, "buy"), trade(12, 2, 292.82, "buy")]
    trades = pl.DataFrame(rows, schema={"token": pl.Utf8, "trade_id": pl.Int64, "ts": pl.Int64, "price": pl.Float64,
                                        "amount": pl.Float64, "side": pl.Utf8}, orient="row").with_columns(pl.col("ts").cast(UTC_US))
    bars = pl.concat([resample_trades(trades, "1m"), resample_trades(trades, "5m")])

    def after_gap(max_gap):
        config = FeatureConfig(spans=("1h",), multi_timeframe=("5m",), rush_chunks={"1m": 1}, max_gap=max_gap)
        f = compute_features(bars, "1m", trades=trades, config=config)
        return f.filter(pl.col("ts").dt.day() == 12).select(
            "gap_seconds", "return_1", "return_1h", "mtf_5m_buy_sell_imbalance", "lm_1m_avg_volume").to_dict(as_series=False)

    # 7 days: Jan 12 is a new series. Nothing reaches back across the hole: no gap, no return,
    # no coarser bar and no buy chunk from before it; within the new series everything restarts.
    restarted = after_gap("7d")
    assert restarted["gap_seconds"] == [None, 60.0, 60.0]
    assert restarted["return_1"] == [None, pytest.approx(0.1), pytest.approx(0.1)]
    assert restarted["return_1h"] == [None, None, None]
    assert restarted["mtf_5m_buy_sell_imbalance"] == [None, None, None]
    assert restarted["lm_1m_avg_volume"] == [None, None, pytest.approx(292.82 / 266.2 - 1)]
    # 30 days: the same bars are one series, computed across the eleven silent days.
    bridged = after_gap("30d")
    assert bridged["gap_seconds"][0] == 11 * 86_400 - 120
    assert bridged["return_1"] == [pytest.approx(242 / 121 - 1), pytest.approx(0.1), pytest.approx(0.1)]
    assert bridged["return_1h"][2] == pytest.approx(292.82 / 121 - 1)
    assert bridged["mtf_5m_buy_sell_imbalance"] == [1.0, 1.0, 1.0]
    assert bridged["lm_1m_avg_volume"] == [pytest.approx(121 / 110 - 1), pytest.approx(266.2 / 121 - 1), pytest.approx(292.82 / 266.2 - 1)]


def test_an_empty_frame_has_the_exact_columns_and_types_of_the_interval():
    config = FeatureConfig(multi_timeframe=("1m", "1h"))
    empty = compute_features(time_bars(trades_for_day(small_config(), START), ["1m"]).clear(), "2s", config=config)
    assert dict(empty.schema) == feature_schema("2s", config) and empty.height == 0
    assert "mtf_1h_rsi_14" in feature_schema("2s", config) and "mtf_1m_rsi_14" not in feature_schema("1m", config)


def _day_with_context():
    trades = trades_for_day(small_config(), START)
    bars = time_bars(trades, ["2s", "1m", "5m", "1h"])
    tokens = trades.group_by("token").agg(pl.col("ts").min().alias("created_at"))
    return trades, bars, tokens


@pytest.mark.parametrize("columns", [
    ["composite_score"],
    ["lm_5s_std_price", "mtf_1m_rsi_14", "hour_cos"],
    ["rush_buy_orders", "token_age_hours", "return_5m"],
    ["macd_hist_pct", "bb_width", "atr_pct", "volume_ratio", "realized_vol_1h"],
])
def test_a_column_selection_equals_those_columns_of_the_whole_set(columns):
    trades, bars, tokens = _day_with_context()
    full = compute_features(bars, "2s", trades=trades, tokens=tokens)
    got = compute_features(bars, "2s", trades=trades, tokens=tokens, columns=columns)
    # In the order of the whole set, bit for bit.
    assert got.equals(full.select("token", "interval", "ts", *[c for c in full.columns if c in columns]))
    assert got.columns[3:] != full.columns[3:]


def test_an_unknown_column_is_named():
    _, bars, _ = _day_with_context()
    with pytest.raises(ValueError, match=r"no feature\(s\) \['mtf_2s_rsi_14', 'nope'\]"):
        compute_features(bars, "1m", columns=["rsi_14", "nope", "mtf_2s_rsi_14"])


@pytest.mark.parametrize("cores", [2, 3])
def test_series_computed_in_threads_give_the_rows_of_one_pass(monkeypatch, cores):
    import alevor_assets.lib.base_features as base

    trades, bars, tokens = _day_with_context()
    one = compute_features(bars, "2s", trades=trades, tokens=tokens)
    monkeypatch.setattr(base, "_MIN_PART_ROWS", 100)
    monkeypatch.setattr(base, "usable_cores", lambda: cores)
    parts = base._series_parts(np.repeat(np.arange(6), 400), cores)
    assert len(parts) == cores and parts[0][0] == 0 and parts[-1][1] == 2400
    assert all(a % 400 == 0 for a, _ in parts), "parts start at series starts"
    assert compute_features(bars, "2s", trades=trades, tokens=tokens).equals(one)
