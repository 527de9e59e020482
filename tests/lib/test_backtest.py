import math
from datetime import datetime, timezone

import numpy as np
import pytest

from alevor_assets.lib.backtest import backtest

M = 60_000_000  # one minute in µs
DAY = 86_400_000_000
D0 = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()) * 1_000_000
NO_COST = {"fee_bps": 0.0, "slippage_bps": 0.0}


def run(rows, **kw):
    """rows: (token, ts_us, horizon_end_us, position, realized_return)."""
    tok, ts, end, pos, ret = (np.array(c) for c in zip(*rows))
    return backtest(tok, ts.astype(np.int64), end.astype(np.int64), pos, ret.astype(float), **kw)


def check(metrics, expected):
    assert set(metrics) == set(expected)
    for key, want in expected.items():
        got = metrics[key]
        if want is None:
            assert got is None, key
        else:
            assert got == pytest.approx(want, rel=1e-12, abs=1e-15), key


def test_overlapping_signals_of_one_token_are_skipped():
    res = run([  # scrambled input order; processed in ts order
        ("A", 20 * M, 30 * M, 1, -0.1),   # trade: previous closed at 20 -> net -0.1
        ("A", 0, 10 * M, 1, 0.1),         # trade: net +0.1
        ("A", 19 * M, 25 * M, 1, 0.3),    # skipped: 19 < 20 (trade opened at 10 is open)
        ("A", 5 * M, 15 * M, 1, 0.5),     # skipped: 5 < 10
        ("A", 12 * M, 30 * M, 0, 9.0),    # no signal
        ("A", 10 * M, 20 * M, -1, -0.2),  # trade at the previous exit: short, net +0.2
    ], risk_fraction=1.0, **NO_COST)
    np.testing.assert_array_equal(res.equity_ts_us, [10 * M, 20 * M, 30 * M])
    np.testing.assert_allclose(res.equity, [1.1, 1.32, 1.188], rtol=1e-12)
    check(res.metrics, {
        "trades": 3, "hit_rate": 2 / 3, "profit_factor": 0.3 / 0.1, "max_drawdown": 1 - 1.188 / 1.32,
        "sharpe": None, "total_return": 0.188, "avg_trade_return": 0.2 / 3, "exposure": 3 / 6,
    })


def test_two_tokens_trade_independently():
    res = run([
        ("A", 0, 10 * M, 1, 0.1),         # trade, exit 10
        ("B", 5 * M, 8 * M, 1, 0.05),     # trade although A is open, exit 8
        ("B", 8 * M, 20 * M, 1, -0.05),   # trade at B's own exit, exit 20
        ("A", 9 * M, 12 * M, 1, 0.4),     # skipped: A still open
    ], risk_fraction=0.5, **NO_COST)
    np.testing.assert_array_equal(res.equity_ts_us, [8 * M, 10 * M, 20 * M])
    e = [1.025, 1.025 * 1.05, 1.025 * 1.05 * 0.975]
    np.testing.assert_allclose(res.equity, e, rtol=1e-12)
    check(res.metrics, {
        "trades": 3, "hit_rate": 2 / 3, "profit_factor": 0.15 / 0.05, "max_drawdown": 0.025,
        "sharpe": None, "total_return": e[-1] - 1, "avg_trade_return": 0.1 / 3, "exposure": 3 / 4,
    })


def test_costs_are_subtracted_round_trip():
    # Defaults: 10 bps fee + 5 bps slippage = 15 bps a side, 30 bps round trip.
    res = run([("A", 0, 10 * M, 1, 0.001), ("A", 10 * M, 20 * M, 1, 0.01)])
    nets = [0.001 - 0.003, 0.01 - 0.003]  # -0.002 (a loser despite a positive gross), +0.007
    e = [1 + 0.1 * nets[0], (1 + 0.1 * nets[0]) * (1 + 0.1 * nets[1])]
    np.testing.assert_allclose(res.equity, e, rtol=1e-12)
    check(res.metrics, {
        "trades": 2, "hit_rate": 0.5, "profit_factor": 0.007 / 0.002, "max_drawdown": 0.0002,
        "sharpe": None, "total_return": e[-1] - 1, "avg_trade_return": 0.0025, "exposure": 1.0,
    })
    lone = run([("A", 0, 10 * M, 1, 0.001)]).metrics
    assert lone["avg_trade_return"] == pytest.approx(-0.002) and lone["hit_rate"] == 0.0
    assert lone["profit_factor"] == 0.0


def test_short_positions_profit_from_falling_prices():
    res = run([("A", 0, 10 * M, -1, -0.02), ("B", 0, 20 * M, -1, 0.01)], slippage_bps=0.0, fee_bps=5.0)
    nets = [0.02 - 0.001, -0.01 - 0.001]  # 0.019, -0.011
    e = [1 + 0.1 * nets[0], (1 + 0.1 * nets[0]) * (1 + 0.1 * nets[1])]
    np.testing.assert_allclose(res.equity, e, rtol=1e-12)
    check(res.metrics, {
        "trades": 2, "hit_rate": 0.5, "profit_factor": 0.019 / 0.011, "max_drawdown": 0.0011,
        "sharpe": None, "total_return": e[-1] - 1, "avg_trade_return": 0.004, "exposure": 1.0,
    })


def test_equity_compounds_in_exit_order_with_ties_by_entry_then_token():
    res = run([
        ("X", 0, 100 * M, 1, 0.5),        # opened first, closes last
        ("B", 10 * M, 20 * M, 1, 0.2),    # exit 20, entry 10, token B
        ("A", 10 * M, 20 * M, 1, -0.5),   # exit 20, entry 10, token A -> before B
        ("Z", 5 * M, 20 * M, 1, 1.0),     # exit 20, entry 5 -> first
    ], risk_fraction=1.0, **NO_COST)
    np.testing.assert_array_equal(res.equity_ts_us, [20 * M, 20 * M, 20 * M, 100 * M])
    np.testing.assert_allclose(res.equity, [2.0, 1.0, 1.2, 1.8], rtol=1e-12)
    check(res.metrics, {
        "trades": 4, "hit_rate": 0.75, "profit_factor": 1.7 / 0.5, "max_drawdown": 0.5,
        "sharpe": None, "total_return": 0.8, "avg_trade_return": 1.2 / 4, "exposure": 1.0,
    })


def test_max_drawdown_on_a_known_curve():
    nets = [0.25, -0.2, 0.5, -0.4, 0.1]  # equity 1.25, 1.0, 1.5, 0.9, 0.99; peaks 1.25, 1.25, 1.5, 1.5, 1.5
    res = run([("A", i * M, (i + 1) * M, 1, r) for i, r in enumerate(nets)], risk_fraction=1.0, **NO_COST)
    np.testing.assert_allclose(res.equity, [1.25, 1.0, 1.5, 0.9, 0.99], rtol=1e-12)
    assert res.metrics["max_drawdown"] == pytest.approx(0.4)  # 1 - 0.9 / 1.5
    # The running peak starts at 1.0: a first losing trade is a drawdown already.
    first_loss = run([("A", 0, M, 1, -0.1), ("A", M, 2 * M, 1, 0.05)], risk_fraction=1.0, **NO_COST)
    assert first_loss.metrics["max_drawdown"] == pytest.approx(0.1)


def test_sharpe_on_a_three_day_example_with_an_idle_day():
    res = run([
        ("A", D0, D0 + 60 * M, 1, 0.1),                  # day 0: equity 1.1
        ("B", D0 + M, D0 + 120 * M, 1, -0.05),           # day 0: equity 1.045
        ("A", D0 + DAY + M, D0 + 2 * DAY, 1, 0.1),       # exits 00:00 of day 2: equity 1.1495
    ], risk_fraction=1.0, **NO_COST)
    # Daily returns: 0.045 (vs 1.0), 0 (day 1 has no trade), 0.1 -> 27/600, 0, 60/600 around mean 29/600;
    # deviations -2, -29, 31 (/600), so std(ddof=1) = sqrt((4 + 841 + 961) / 2) / 600 = sqrt(903) / 600.
    expected = 29 / math.sqrt(903) * math.sqrt(365)
    assert expected == pytest.approx(18.437, abs=1e-3)
    check(res.metrics, {
        "trades": 3, "hit_rate": 2 / 3, "profit_factor": 0.2 / 0.05, "max_drawdown": 1 - 1.045 / 1.1,
        "sharpe": expected, "total_return": 0.1495, "avg_trade_return": 0.15 / 3, "exposure": 1.0,
    })
    flat = run([("A", D0, D0 + M, 1, 0.0), ("A", D0 + DAY, D0 + DAY + M, 1, 0.0)], **NO_COST)
    assert flat.metrics["sharpe"] is None  # zero std


def test_returns_are_net_uses_position_only_to_select_trades():
    res = run([
        ("A", 0, 10 * M, -1, 0.02),     # net +0.02 as given (sign of position ignored, no costs)
        ("A", 10 * M, 20 * M, 1, -0.01),
        ("A", 20 * M, 30 * M, 0, 5.0),  # not selected
        ("A", 30 * M, 40 * M, 1, np.nan),  # unknown outcome: no trade
    ], returns_are_net=True)
    e = [1.002, 1.002 * 0.999]
    np.testing.assert_allclose(res.equity, e, rtol=1e-12)
    check(res.metrics, {
        "trades": 2, "hit_rate": 0.5, "profit_factor": 2.0, "max_drawdown": 0.001,
        "sharpe": None, "total_return": e[-1] - 1, "avg_trade_return": 0.005, "exposure": 0.5,
    })


def test_empty_input_and_no_signals():
    empty = backtest(np.array([], dtype=str), np.array([], dtype=np.int64), np.array([], dtype=np.int64),
                     np.array([]), np.array([]))
    assert len(empty.equity) == 0 and len(empty.equity_ts_us) == 0
    check(empty.metrics, {
        "trades": 0, "hit_rate": None, "profit_factor": None, "max_drawdown": 0.0,
        "sharpe": None, "total_return": 0.0, "avg_trade_return": None, "exposure": None,
    })
    idle = run([("A", 0, M, 0, 0.1), ("B", 0, M, 0, -0.1)])
    assert idle.metrics["trades"] == 0 and idle.metrics["exposure"] == 0.0


def test_invalid_positions_are_rejected():
    with pytest.raises(ValueError, match="position"):
        run([("A", 0, M, 2, 0.1)])
