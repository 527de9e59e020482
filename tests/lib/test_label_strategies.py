"""The price-based label strategies: hand-worked series, no leakage past ``horizon_end``, tokens
independent of each other, day boundaries equal to a continuous series, and parameters."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import polars as pl
import pytest

from alevor_assets.lib.bars import time_bars
from alevor_assets.lib.labels import (
    LabelContext,
    _arrays,
    _ewm_std_log_returns,
    finalize_labels,
    label_strategies,
    make_label_strategy,
)
from alevor_assets.lib.synthetic import events_for_day, tokens_for_day, trades_for_day
from tests.conftest import START, small_config

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
US = 1_000_000
MIN = 60
UTC_US = pl.Datetime("us", "UTC")


def make_bars(rows, token: str = "A", interval: str = "1m") -> pl.DataFrame:
    """Bars from ``(seconds, close[, high, low, volume, vwap, quote_volume])`` tuples (seconds after
    T0). Missing high/low default to close, volume to 1, vwap to close, quote_volume to
    close * volume."""
    out = []
    for row in rows:
        secs, close, *rest = row
        high = rest[0] if len(rest) > 0 else close
        low = rest[1] if len(rest) > 1 else close
        volume = rest[2] if len(rest) > 2 else 1.0
        vwap = rest[3] if len(rest) > 3 else close
        quote_volume = rest[4] if len(rest) > 4 else close * volume
        out.append(dict(
            token=token, interval=interval, ts=int(T0.timestamp() * US) + secs * US,
            open=close, high=high, low=low, close=close, volume=volume, quote_volume=quote_volume,
            buy_volume=volume / 2, sell_volume=volume / 2, trade_count=1, vwap=vwap,
        ))
    return pl.DataFrame(out).with_columns(pl.col("ts").cast(UTC_US), pl.col("trade_count").cast(pl.Int64))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def minutes(series) -> list[float]:
    return [(t - T0).total_seconds() / 60 for t in series.to_list()]


def run(name: str, bars: pl.DataFrame, params=None, **ctx) -> pl.DataFrame:
    s = make_label_strategy(name, params or {})
    return finalize_labels(s.compute(LabelContext(bars, "1m", **ctx)), name, "1m", s.task, None)


def rows_of(out: pl.DataFrame, token: str = "A") -> pl.DataFrame:
    return out.filter(pl.col("token") == token)


# ------------------------------------------------------------------------------------------------
# heuristic_pump_dump
# ------------------------------------------------------------------------------------------------


def test_heuristic_pump_dump_by_hand():
    closes = {0: 100, 1: 104, 2: 115, 3: 115, 4: 100, 5: 120, 6: 125, 7: 108, 20: 100, 21: 112, 22: 100}
    bars = make_bars([(m * MIN, float(c)) for m, c in closes.items()])
    out = run("heuristic_pump_dump", bars, {"rise": 0.10, "window": "3m", "drop": 0.10, "dump_window": "1m"})
    # Rise window = bars starting in (ts, ts + 3m]; dump window = bars starting in (peak_ts, peak_ts + 1m].
    # m0: next 104, 115@m2, 115@m3 -> peak 115 at m2 (first occurrence), 115 >= 110; dump window
    #     (m2, m3] = {115} > 103.5 -> 0 (the later peak m3 would have seen 100 at m4: ties matter).
    # m1: next 115@m2, 115, 100 -> peak m2, 115 >= 114.4; dump window again {115} -> 0.
    # m2: next 115, 100, 120 -> peak 120 < 126.5 -> 0.   m3: next 100, 120, 125 -> 125 < 126.5 -> 0.
    # m4: next 120, 125@m6, 108 -> 125 >= 110; dump (m6, m7] = {108} <= 112.5 -> 1.
    # m5: next 125, 108 -> 125 < 132 -> 0.   m6: next 108 -> 0.   m7: nothing until m10 -> 0.
    # m20: next 112@m21, 100 -> 112 >= 110; dump (m21, m22] = {100} <= 100.8 -> 1.
    # m21: next 100 -> 0.   m22: nothing -> 0.
    assert out["label"].to_list() == [0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0]
    # horizon_end = ts + window + dump_window + interval = ts + 5m.
    assert minutes(out["horizon_end"]) == [m + 5 for m in closes]
    assert "realized_return" not in out.columns
    # Both windows include their end: a peak exactly at ts + 3m and a dump bar exactly 1m later
    # (the last bar the label reads starts at ts + 4m and ends at its horizon_end, ts + 5m).
    edge = make_bars([(0, 100.0), (3 * MIN, 112.0), (4 * MIN, 100.0)])
    out = run("heuristic_pump_dump", edge, {"rise": 0.10, "window": "3m", "drop": 0.10, "dump_window": "1m"})
    assert out["label"].to_list() == [1, 0, 0]
    late = make_bars([(0, 100.0), (3 * MIN, 112.0), (5 * MIN, 100.0)])  # the dump one minute too late
    assert run("heuristic_pump_dump", late, {"rise": 0.10, "window": "3m", "drop": 0.10, "dump_window": "1m"})[
        "label"].to_list() == [0, 0, 0]
    s = make_label_strategy("heuristic_pump_dump", {"window": "3m", "dump_window": "1m"})
    assert s.look_ahead("1m") == timedelta(minutes=5)


# ------------------------------------------------------------------------------------------------
# early_pump
# ------------------------------------------------------------------------------------------------


def test_early_pump_labels_only_young_tokens():
    young = make_bars([(0, 1.0), (60, 1.0), (120, 1.0)], token="YOUNG")
    old = make_bars([(0, 1.0), (60, 1.0)], token="OLD")
    unknown = make_bars([(0, 1.0)], token="NULL")
    missing = make_bars([(0, 1.0)], token="MISSING")
    bars = pl.concat([young, old, unknown, missing])
    tokens = pl.DataFrame({
        "token": ["YOUNG", "OLD", "NULL"],
        # YOUNG is 47h59m old at m0, exactly 48h at m1 (still labelled), 48h01m at m2 (too old).
        "created_at": [T0 - timedelta(hours=47, minutes=59), T0 - timedelta(hours=49), None],
    }).with_columns(pl.col("created_at").cast(UTC_US))
    events = pl.DataFrame({
        "token": ["YOUNG", "YOUNG", "OLD"], "type": ["pump", "dump", "pump"],
        "start_time": [at(1), at(0.5), at(0)], "end_time": [at(1.5), at(0.75), at(2)],
    }).with_columns(pl.col("start_time", "end_time").cast(UTC_US))
    out = run("early_pump", bars, {"max_age_hours": 48.0}, events=events, tokens=tokens)
    # Only YOUNG at m0 (no pump -> 0) and m1 (pump [1:00, 1:30) -> 1); OLD is 49h old, NULL has no
    # created_at, MISSING is not in tokens: none labelled.
    assert out.select("token", "label").rows() == [("YOUNG", 0), ("YOUNG", 1)]
    assert minutes(out["horizon_end"]) == [1, 2]
    three = run("early_pump", bars, {"classes": {"pump": 1, "dump": 2}}, events=events, tokens=tokens)
    # The dump [0:30, 0:45) overlaps YOUNG's m0 bar.
    assert three["label"].to_list() == [2, 1]
    # No token metadata: nothing can be labelled.
    assert run("early_pump", bars, {}, events=events).height == 0


# ------------------------------------------------------------------------------------------------
# regime
# ------------------------------------------------------------------------------------------------


REGIME_SERIES = {
    # token: closes at m0..m3; the first bar's window (ts, ts + 3m] holds m1..m3 (n = 3).
    "TREND": [100, 103, 102, 105],  # move .05, path .0691, eff .723, log-ret std .0184, vol .0319
    "RANGE": [100, 103, 97, 100.5],  # move .005 < min_move, vol .0757
    "CHOP": [100, 104, 98, 102],  # move .02, path .1385, eff .144 < .35, vol .0809
    "QUIET": [100, 100.01, 100.02, 100.03],  # vol 1.4e-8 < .002
    "FLAT": [100, 100, 100, 100],  # path 0 -> eff 0, vol 0
}


def _regime_bars() -> pl.DataFrame:
    frames = [make_bars([(m * MIN, float(c)) for m, c in enumerate(cs)], token=t) for t, cs in REGIME_SERIES.items()]
    # SPARSE: m0 100, m1 103, m2 105, m5 110 -> m0's window (m0, m3] holds only 2 bars -> NO_TRADE.
    frames.append(make_bars([(0, 100.0), (60, 103.0), (120, 105.0), (300, 110.0)], token="SPARSE"))
    return pl.concat(frames)


def test_regime_by_hand():
    bars = _regime_bars()
    out = run("regime", bars, {"horizon": "3m"})
    first = dict(out.group_by("token").agg(pl.col("label").first()).rows())
    assert first == {"TREND": 2, "RANGE": 1, "CHOP": 1, "QUIET": 0, "FLAT": 0, "SPARSE": 0}
    # Every later bar has fewer than 3 next bars in its window -> NO_TRADE.
    assert out.filter(pl.col("ts") > T0)["label"].unique().to_list() == [0]
    # horizon_end = ts + interval + horizon = ts + 4m, always.
    assert (out["horizon_end"] - out["ts"]).unique().to_list() == [timedelta(minutes=4)]
    # volatility is std * sqrt(n): TREND's std .0184 is below .025 but .0319 is not.
    trend = bars.filter(pl.col("token") == "TREND")
    assert run("regime", trend, {"horizon": "3m", "min_volatility": 0.025})["label"][0] == 2
    assert run("regime", trend, {"horizon": "3m", "min_volatility": 0.035})["label"][0] == 0
    # efficiency and min_move thresholds: CHOP becomes a trend at efficiency .14, TREND a range at
    # min_move .06.
    chop = bars.filter(pl.col("token") == "CHOP")
    assert run("regime", chop, {"horizon": "3m", "efficiency": 0.14})["label"][0] == 2
    assert run("regime", trend, {"horizon": "3m", "min_move": 0.06})["label"][0] == 1
    # A window ending one minute earlier (2m) holds only 2 bars.
    assert run("regime", trend, {"horizon": "2m"})["label"][0] == 0


def test_regime_window_sums_cross_block_and_day_boundaries():
    # Windows spanning several blocks (and a UTC midnight) give the same labels as a direct scan.
    rng = np.random.default_rng(5)
    secs = np.cumsum(rng.choice([60, 60, 120, 300], size=800)) + 86_400 - 20_000
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, size=800)))
    bars = make_bars([(int(s), float(c)) for s, c in zip(secs, closes)])
    params = {"horizon": "20m", "efficiency": 0.3, "min_move": 0.005, "min_volatility": 0.002}
    got = run("regime", bars, params)["label"].to_list()
    expected = []
    for i, s in enumerate(secs):
        window = [j for j in range(i + 1, len(secs)) if secs[j] <= s + 20 * MIN]
        c = [closes[i]] + [closes[j] for j in window]
        n = len(window)
        if n < 3:
            expected.append(0)
            continue
        move = abs(c[-1] / c[0] - 1)
        path = sum(abs(c[k] / c[k - 1] - 1) for k in range(1, n + 1))
        lr = np.log(np.array(c[1:]) / np.array(c[:-1]))
        vol = lr.std() * math.sqrt(n)
        eff = move / path if path > 0 else 0.0
        expected.append(0 if vol < 0.002 else (2 if eff >= 0.3 and move >= 0.005 else 1))
    assert got == expected
    assert set(got) == {0, 1, 2}


# ------------------------------------------------------------------------------------------------
# signal_consistency
# ------------------------------------------------------------------------------------------------


def test_signal_consistency_by_hand():
    closes = {0: 100, 1: 102, 2: 104, 3: 101, 4: 99, 6: 95}
    bars = make_bars([(m * MIN, float(c)) for m, c in closes.items()])
    out = run("signal_consistency", bars, {"horizons": ["3m", "1m"], "threshold": 0.0})
    # Exit for horizon h: last close of a bar ending at or before ts + 1m + h, i.e. starting at or
    # before ts + h.   1m / 3m returns:
    # m0: 102/100-1 = +.02, 101/100-1 = +.01 -> all up -> 1, realized +.01 (longest = 3m)
    # m1: 104/102-1 > 0, 99/102-1 < 0 -> 0, realized 0
    # m2: 101/104-1 < 0, (m5 missing -> m4) 99/104-1 < 0 -> 1, realized -(99/104-1)
    # m3: 99/101-1 < 0, 95/101-1 < 0 -> 1, realized -(95/101-1)
    # m4: (m5 missing) itself -> 0 -> not > 0 -> 0, realized 0;   m6: itself -> 0
    assert out["label"].to_list() == [1, 0, 1, 1, 0, 0]
    assert out["realized_return"].to_list() == pytest.approx([0.01, 0.0, 1 - 99 / 104, 1 - 95 / 101, 0.0, 0.0])
    assert minutes(out["horizon_end"]) == [m + 4 for m in closes]
    strict = run("signal_consistency", bars, {"horizons": ["1m", "3m"], "threshold": 0.015})
    # m0: +.01 is not > .015 -> 0; m2: -.0288 and -.0481 -> 1; m3: -.0198 and -.0594 -> 1.
    assert strict["label"].to_list() == [0, 0, 1, 1, 0, 0]
    assert strict["realized_return"].to_list() == pytest.approx([0.0, 0.0, 1 - 99 / 104, 1 - 95 / 101, 0.0, 0.0])


# ------------------------------------------------------------------------------------------------
# triple_barrier / triple_barrier_meta
# ------------------------------------------------------------------------------------------------

# m0..m5 alternate 100/101 (high = low = close); m6 101; m7 close 101 with high 110; m8 close 101
# with high 110 and low 90; m9 101.
BARRIER_ROWS = [(m * MIN, c) for m, c in enumerate([100.0, 101.0, 100.0, 101.0, 100.0, 101.0, 101.0])] + [
    (7 * MIN, 101.0, 110.0, 101.0), (8 * MIN, 101.0, 110.0, 90.0), (9 * MIN, 101.0),
]


def _sigma(closes) -> np.ndarray:
    # The reference: pandas' EWM std of 1-bar log returns (span 5, adjust=False, bias-corrected).
    return pd.Series(np.log(np.asarray(closes))).diff().ewm(span=5, adjust=False).std().to_numpy()


def test_triple_barrier_by_hand():
    bars = pl.concat([make_bars(BARRIER_ROWS), make_bars([(m * MIN, 50.0) for m in range(6)], token="FLAT")])
    params = {"profit_take": 2.0, "stop_loss": 2.0, "horizon": "3m", "vol_span": 5}
    out = run("triple_barrier", bars, params)
    sigma = _sigma([r[1] for r in BARRIER_ROWS])
    # sigma: NaN at m0 (no return) and m1 (one return) -> not labelled; then .0141, .0103, .0116,
    # .0106, .0088, .0072, .0059, .0049. Barriers are within about +-2.1% of c0, so moves of 1%
    # between 100 and 101 never touch them.
    # m2 (100): next m3..m5 no touch -> 0, realized ln(101/100), horizon_end m2 + 4m
    # m3 (101): next m4..m6 no touch -> 0, realized ln(101/101) = 0
    # m4 (100): next m5, m6, m7: m7's high 110 >= 102.36 -> 1 at m7, realized 2 sigma, end m8
    # m5, m6: m7 touches the upper barrier -> 1, end m8
    # m7: m8 has high 110 and low 90: both barriers in one bar -> -1, realized -2 sigma, end m9
    # m8 (101): m9 at 101 is inside [99.81, 102.21] -> 0, realized 0, end m12
    # m9: no next bar -> 0, realized 0, end m13.   FLAT: sigma 0 -> nothing labelled.
    assert out["token"].unique().to_list() == ["A"]
    assert minutes(out["ts"]) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert out["label"].to_list() == [0, 0, 1, 1, 1, -1, 0, 0]
    assert out["realized_return"].to_list() == pytest.approx(
        [math.log(1.01), 0.0, 2 * sigma[4], 2 * sigma[5], 2 * sigma[6], -2 * sigma[7], 0.0, 0.0], rel=1e-12
    )
    assert minutes(out["horizon_end"]) == [6, 7, 8, 8, 8, 9, 12, 13]
    s = make_label_strategy("triple_barrier", params)
    assert s.look_ahead("1m") == timedelta(minutes=4)
    assert s.look_back("1m") == timedelta(minutes=25)  # 5 * vol_span bars


def test_triple_barrier_meta_by_hand():
    bars = make_bars(BARRIER_ROWS)
    params = {"profit_take": 2.0, "stop_loss": 2.0, "horizon": "3m", "vol_span": 5, "side_lookback": 1}
    out = run("triple_barrier_meta", bars, params)
    sigma = _sigma([r[1] for r in BARRIER_ROWS])
    # side = sign(close / previous close - 1): m2 -1, m3 +1, m4 -1, m5 +1, m6..m9 0 (not labelled);
    # m0, m1 have no sigma. Triple-barrier outcomes (above): m2 0, m3 0, m4 1, m5 1.
    # meta: m2 0 != -1 -> 0; m3 0 != 1 -> 0; m4 1 != -1 -> 0; m5 1 == 1 -> 1.
    assert minutes(out["ts"]) == [2, 3, 4, 5]
    assert out["label"].to_list() == [0, 0, 0, 1]
    assert out["realized_return"].to_list() == pytest.approx(
        [-math.log(1.01), 0.0, -2 * sigma[4], 2 * sigma[5]], rel=1e-12
    )
    assert minutes(out["horizon_end"]) == [6, 7, 8, 8]
    # side_lookback 2: only m6 (101 vs 100 at m4 -> +1) has a non-zero side; outcome 1 -> 1.
    two = run("triple_barrier_meta", bars, {**params, "side_lookback": 2})
    assert minutes(two["ts"]) == [6] and two["label"].to_list() == [1]
    assert two["realized_return"].to_list() == pytest.approx([2 * sigma[6]])


def test_ewm_sigma_equals_pandas_per_token():
    rng = np.random.default_rng(3)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, size=400)))
    closes[100:110] = closes[99]  # a flat stretch
    bars = pl.concat([
        make_bars([(i * MIN, float(c)) for i, c in enumerate(closes[:250])], token="A"),
        make_bars([(i * MIN, float(c)) for i, c in enumerate(closes[250:])], token="B"),
    ])
    a = _arrays(bars)
    got = _ewm_std_log_returns(a.col("close"), a.seg_start, 20.0)
    expected = np.concatenate([
        pd.Series(np.log(closes[:250])).diff().ewm(span=20, adjust=False).std().to_numpy(),
        pd.Series(np.log(closes[250:])).diff().ewm(span=20, adjust=False).std().to_numpy(),
    ])
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], rtol=1e-10)


# ------------------------------------------------------------------------------------------------
# edge
# ------------------------------------------------------------------------------------------------


def test_edge_by_hand():
    closes = {0: 100.0, 1: 100.2, 2: 101.0, 3: 100.5, 5: 99.0}
    bars = make_bars([(m * MIN, c) for m, c in closes.items()])
    params = {"horizon": "2m", "fee_bps": 10.0, "slippage_bps": 5.0}  # cost 2 * 15 bps = .003
    # Exit = last close of a bar starting at or before ts + 2m:
    # m0 -> 101 (+.01); m1 -> 100.5 (+.002994); m2 -> 100.5 (-.00495); m3 -> 99 (m5; -.014925);
    # m5 -> itself (0).
    gross = [0.01, 100.5 / 100.2 - 1, 100.5 / 101 - 1, 99 / 100.5 - 1, 0.0]
    long = run("edge", bars, {**params, "side": "long"})
    # long net = gross - .003: .007 -> 1; -.000006 -> 0 (costs eat it); the rest negative -> 0.
    assert long["label"].to_list() == [1, 0, 0, 0, 0]
    assert long["realized_return"].to_list() == pytest.approx([g - 0.003 for g in gross])
    assert minutes(long["horizon_end"]) == [m + 3 for m in closes]
    short = run("edge", bars, {**params, "side": "short"})
    # short net = -gross - .003: -.013, -.005994, +.00195 -> 1, +.011925 -> 1, -.003.
    assert short["label"].to_list() == [0, 0, 1, 1, 0]
    assert short["realized_return"].to_list() == pytest.approx([-g - 0.003 for g in gross])


def test_edge_momentum_side_uses_the_10_bar_return():
    closes = [100.0] * 10 + [101.0, 100.0, 99.0, 97.0]  # m0..m13
    bars = make_bars([(m * MIN, c) for m, c in enumerate(closes)])
    out = run("edge", bars, {"side": "momentum", "horizon": "2m", "fee_bps": 10.0, "slippage_bps": 5.0})
    # side at m10 = sign(101/100 - 1) = +1; m11: 100/100 -> 0 (not labelled); m12: 99/100 -> -1;
    # m13: 97/100 -> -1; m0..m9 have no bar 10 earlier (not labelled).
    # m10: exit m12 (99): +1 * (99/101 - 1) - .003 -> 0.   m12: exit m13 (97): -(97/99 - 1) - .003
    # = .0172 -> 1.   m13: exit itself: -0 - .003 -> 0.
    assert minutes(out["ts"]) == [10, 12, 13]
    assert out["label"].to_list() == [0, 1, 0]
    assert out["realized_return"].to_list() == pytest.approx([99 / 101 - 1 - 0.003, 1 - 97 / 99 - 0.003, -0.003])
    s = make_label_strategy("edge", {"side": "momentum", "horizon": "2m"})
    assert s.look_back("1m") == timedelta(minutes=10) and s.look_ahead("1m") == timedelta(minutes=3)
    assert make_label_strategy("edge").look_back("1m") == timedelta(0)


# ------------------------------------------------------------------------------------------------
# friction
# ------------------------------------------------------------------------------------------------


def test_friction_by_hand():
    # (seconds, close, high, low, volume, vwap, quote_volume)
    a = make_bars([
        (0, 10.0, 10.0, 10.0, 10.0, 10.0, 100.0),
        (60, 10.1, 10.1, 10.1, 6.0, 10.2, 60.0),  # takes at most .5 * 60 = 30
        (120, 10.3, 10.3, 10.3, 10.0, 10.4, 100.0),  # at most 50
        (180, 10.0, 10.0, 10.0, 20.0, 10.0, 200.0),  # at most 100
        (420, 9.0, 9.0, 9.0, 100.0, 9.0, 1000.0),
    ])
    # THIN: at most 5 quote per bar, never fills 100 within 3m.
    thin = make_bars([(m * MIN, 10.0, 10.0, 10.0, 1.0, 10.0, 10.0) for m in range(4)], token="THIN")
    params = {"order_quote": 100.0, "participation": 0.5, "fee_bps": 10.0, "max_horizon": "3m"}
    out = run("friction", pl.concat([a, thin]), {**params, "side": "buy"})
    # m0 (close 10): 30 @ 10.2, 50 @ 10.4, 20 @ 10.0 (filled at m3) -> exec 10.26 -> .026 + .001
    # m1 (10.1): 50 @ 10.4, 50 @ 10.0 (filled at m3) -> exec 10.2 -> 10.2/10.1 - 1 + .001
    # m2 (10.3): 100 @ 10.0 at m3 (exactly its cap) -> 10/10.3 - 1 + .001 (negative: price fell)
    # m3: no bar in (m3, m6] -> not labelled; m7: nothing after it -> not labelled. THIN: none.
    assert out["token"].unique().to_list() == ["A"]
    assert minutes(out["ts"]) == [0, 1, 2]
    assert out["label"].to_list() == pytest.approx([0.027, 10.2 / 10.1 - 1 + 0.001, 10 / 10.3 - 1 + 0.001])
    assert minutes(out["horizon_end"]) == [4, 4, 4]  # the filling bar m3's end
    assert out["label"].dtype == pl.Float64
    sell = run("friction", a, {**params, "side": "sell"})
    assert sell["label"].to_list() == pytest.approx([-0.025, 1 - 10.2 / 10.1 + 0.001, 1 - 10 / 10.3 + 0.001])
    # Participation .25 caps m1..m3 at 15, 25, 50 and m7 at 250: within 3m nothing fills (m0 gets 90,
    # m1 75, m2 50).
    assert run("friction", a, {**params, "participation": 0.25}).height == 0
    # With max_horizon 5m: m2's window (m2, m7] takes 50 @ 10.0 then 50 @ 9.0 at m7 -> exec 9.5;
    # m3's window (m3, m8] takes 100 @ 9.0 at m7 -> exec 9; m0 (90) and m1 (75, m7 is 6m away) unfilled.
    wide = run("friction", a, {**params, "participation": 0.25, "max_horizon": "5m"})
    assert minutes(wide["ts"]) == [2, 3]
    assert wide["label"].to_list() == pytest.approx([9.5 / 10.3 - 1 + 0.001, 9 / 10 - 1 + 0.001])
    assert minutes(wide["horizon_end"]) == [8, 8]


# ------------------------------------------------------------------------------------------------
# Properties on generated data: no leakage, independent tokens, day boundaries, parameters.
# ------------------------------------------------------------------------------------------------

STRATEGY_PARAMS = {
    "heuristic_pump_dump": {"rise": 0.03, "drop": 0.02, "window": "10m", "dump_window": "5m"},
    "early_pump": {"max_age_hours": 48.0, "classes": {"pump": 1, "dump": 2}},
    "regime": {"horizon": "30m"},
    "signal_consistency": {"horizons": ["5m", "15m"], "threshold": 0.001},
    "triple_barrier": {"horizon": "30m", "vol_span": 20},
    "triple_barrier_meta": {"horizon": "30m", "vol_span": 20, "side_lookback": 5},
    "edge": {"side": "momentum", "horizon": "10m"},
    "friction": {"order_quote": 200.0, "max_horizon": "20m", "side": "sell"},
}
NEW = list(STRATEGY_PARAMS)


@pytest.fixture(scope="module")
def market():
    cfg = small_config()
    days = [START + timedelta(days=i) for i in range(3)]
    bars = pl.concat([time_bars(trades_for_day(cfg, d), ["1m"]) for d in days]).filter(pl.col("interval") == "1m")
    events = pl.concat([events_for_day(cfg, d) for d in days]).unique().sort("token", "start_time", "type")
    return bars.sort("token", "ts"), events, tokens_for_day(cfg, days[-1]), days


def _labels(name, bars, events, tokens, data_end_us=None):
    s = make_label_strategy(name, STRATEGY_PARAMS[name])
    raw = s.compute(LabelContext(bars, "1m", events=events, tokens=tokens))
    return finalize_labels(raw, name, "1m", s.task, data_end_us)


def _perturb_from(bars: pl.DataFrame, cut: datetime, seed: int) -> pl.DataFrame:
    """Bars before ``cut`` untouched; from ``cut`` on prices and volumes changed, a third of the bars
    dropped and a few new ones added."""
    rng = np.random.default_rng(seed)
    before = bars.filter(pl.col("ts") < cut)
    after = bars.filter(pl.col("ts") >= cut)
    n = after.height
    factor = pl.Series(np.exp(rng.normal(0, 0.2, n)))
    after = after.with_columns(
        (pl.col(c) * factor) for c in ["open", "high", "low", "close", "vwap"]
    ).with_columns((pl.col("quote_volume") * pl.Series(rng.uniform(0, 3, n))).alias("quote_volume"))
    after = after.filter(pl.Series(rng.uniform(size=n) > 0.33))
    extra = after.head(5).with_columns(pl.col("ts") + timedelta(seconds=30))  # off-grid, still >= cut
    return pl.concat([before, after, extra]).sort("token", "ts")


@pytest.mark.parametrize("name", NEW)
def test_labels_do_not_change_when_bars_after_horizon_end_change(market, name):
    bars, events, tokens, days = market
    # Days 1 and 2 of the generated market (young tokens appear on day 2); cuts through day 2.
    day = datetime.combine(days[1], datetime.min.time(), timezone.utc)
    bars = bars.filter(pl.col("ts") < day + timedelta(days=1))
    base = _labels(name, bars, events, tokens)
    assert base.height > 100 and base["label"].n_unique() > 1
    for k, cut_min in enumerate(range(17, 24 * 60, 29)):
        cut = day + timedelta(minutes=cut_min)
        changed = _labels(name, _perturb_from(bars, cut, k), events, tokens)
        keep = pl.col("horizon_end") <= cut
        assert base.filter(keep).equals(changed.filter(keep)), (name, cut)
        assert base.filter(keep).height > 0


@pytest.mark.parametrize("name", NEW)
def test_tokens_never_influence_each_other(market, name):
    bars, events, tokens, _ = market
    together = _labels(name, bars, events, tokens)
    alone = pl.concat([
        _labels(name, bars.filter(pl.col("token") == t), events, tokens) for t in bars["token"].unique().sort()
    ])
    assert together.equals(alone)
    # Reversed row order of the input changes nothing either.
    assert _labels(name, bars.reverse(), events, tokens).equals(together)


@pytest.mark.parametrize("name", NEW)
def test_a_day_with_its_look_back_equals_the_continuous_series(market, name):
    bars, events, tokens, days = market
    s = make_label_strategy(name, STRATEGY_PARAMS[name])
    day = datetime.combine(days[2], datetime.min.time(), timezone.utc)
    back = -(-int(s.look_back("1m").total_seconds()) // 86_400)
    assert back <= 1
    continuous = _labels(name, bars, events, tokens).filter(pl.col("ts") >= day)
    window = bars.filter(pl.col("ts") >= day - timedelta(days=back))
    alone = _labels(name, window, events, tokens).filter(pl.col("ts") >= day)
    if name.startswith("triple_barrier"):
        # sigma is an EWM with infinite memory: where it starts weighs (1 - 2/21) ** (bars of the
        # previous day), so a sparse token's sigma (and realized return = 2 sigma) differs in the
        # 6th digit; the labels are the same.
        assert alone.drop("realized_return").equals(continuous.drop("realized_return"))
        np.testing.assert_allclose(alone["realized_return"], continuous["realized_return"], rtol=1e-4)
    else:
        assert alone.equals(continuous)


@pytest.mark.parametrize("name", NEW)
def test_look_ahead_covers_every_horizon(market, name):
    bars, events, tokens, _ = market
    s = make_label_strategy(name, STRATEGY_PARAMS[name])
    out = _labels(name, bars, events, tokens)
    reach = (out["horizon_end"] - out["ts"]).max()
    assert timedelta(0) < (out["horizon_end"] - out["ts"]).min()
    assert reach <= s.look_ahead("1m")


def test_realized_return_is_kept_only_when_produced(market):
    bars, events, tokens, _ = market
    with_rr = {"signal_consistency", "triple_barrier", "triple_barrier_meta", "edge"}
    for name in NEW:
        out = _labels(name, bars, events, tokens)
        if name in with_rr:
            assert out.columns[-1] == "realized_return" and out["realized_return"].dtype == pl.Float64
            assert out.columns[:-1] == ["token", "interval", "ts", "strategy", "label", "weight", "horizon_end"]
        else:
            assert "realized_return" not in out.columns
    raw = pl.DataFrame({
        "token": ["A", "A"], "ts": [at(0), at(1)], "label": [1, None],
        "horizon_end": [at(2), at(3)], "realized_return": [None, 0.5],
    }).with_columns(pl.col("ts", "horizon_end").cast(UTC_US))
    out = finalize_labels(raw, "x", "1m", "classification", None)
    assert out["realized_return"].to_list() == [None]  # null kept, null-label row dropped


def test_make_label_strategy_builds_each_with_its_params_and_rejects_unknown_ones():
    assert set(NEW) <= set(label_strategies())
    for name, params in STRATEGY_PARAMS.items():
        s = make_label_strategy(name, params)
        got = s.params()
        for key, value in params.items():
            assert got[key] == (tuple(value) if isinstance(value, list) else value), (name, key)
        defaults = make_label_strategy(name).params()
        assert set(defaults) == {f.name for f in dataclasses.fields(type(s))}
        with pytest.raises(ValueError, match="no parameter"):
            make_label_strategy(name, {**params, "bogus": 1})
    assert make_label_strategy("heuristic_pump_dump").params() == {
        "rise": 0.15, "window": "15m", "drop": 0.10, "dump_window": "15m"}
    assert make_label_strategy("early_pump").params() == {"max_age_hours": 48.0, "classes": {"pump": 1}}
    assert make_label_strategy("regime").params() == {
        "horizon": "1h", "efficiency": 0.35, "min_move": 0.01, "min_volatility": 0.002}
    assert make_label_strategy("signal_consistency").params() == {"horizons": ("5m", "15m", "1h"), "threshold": 0.0}
    assert make_label_strategy("triple_barrier").params() == {
        "profit_take": 2.0, "stop_loss": 2.0, "horizon": "1h", "vol_span": 50}
    assert make_label_strategy("triple_barrier_meta").params() == {
        "profit_take": 2.0, "stop_loss": 2.0, "horizon": "1h", "vol_span": 50, "side_lookback": 10}
    assert make_label_strategy("edge").params() == {
        "side": "long", "horizon": "15m", "fee_bps": 10.0, "slippage_bps": 5.0}
    assert make_label_strategy("friction").params() == {
        "order_quote": 1000.0, "participation": 0.1, "fee_bps": 10.0, "max_horizon": "30m", "side": "buy"}
    tasks = {n: label_strategies()[n].task for n in NEW}
    assert tasks["friction"] == "regression" and all(t == "classification" for n, t in tasks.items() if n != "friction")
    assert label_strategies()["early_pump"].needs_events


@pytest.mark.parametrize(("name", "params"), [
    ("edge", {"side": "sideways"}),
    ("friction", {"side": "hold"}),
    ("friction", {"participation": 1.5}),
    ("regime", {"horizon": "soon"}),
    ("triple_barrier", {"vol_span": 0}),
    ("triple_barrier", {"profit_take": -1.0}),
    ("triple_barrier_meta", {"side_lookback": 0}),
    ("signal_consistency", {"horizons": []}),
    ("heuristic_pump_dump", {"rise": "a lot"}),
])
def test_invalid_parameter_values_are_rejected(name, params):
    with pytest.raises(ValueError):
        make_label_strategy(name, params)
