from datetime import timedelta

import polars as pl

from alevor_assets.lib.contract import check_contract
from alevor_assets.lib.event_extents import given_extents
from alevor_assets.lib.synthetic import SyntheticConfig, events_for_day, tokens_for_day, trades_for_day
from tests.conftest import START, small_config


def test_any_day_is_reproducible_on_its_own():
    cfg = small_config()
    day = START + timedelta(days=2)
    first = trades_for_day(cfg, day)
    trades_for_day(cfg, START)  # generating other days in between changes nothing
    assert trades_for_day(cfg, day).equals(first)
    assert not trades_for_day(SyntheticConfig(seed=cfg.seed + 1, tokens=cfg.tokens), day).equals(first)


def test_generated_trades_satisfy_the_contract():
    cfg = small_config()
    for offset in range(3):
        day = START + timedelta(days=offset)
        trades = trades_for_day(cfg, day).with_columns(pl.lit(day).alias("date"))
        report = check_contract("raw_trades", trades, ts_column="ts")
        assert report.passed, report.summary()
        assert check_contract("tokens", tokens_for_day(cfg, day)).passed
        assert check_contract("labelled_events", given_extents(events_for_day(cfg, day))).passed


def test_market_has_launches_bursts_heavy_tails_and_pumps():
    cfg = SyntheticConfig(tokens=30, trades_per_token_day=2000, launch_start=START, launch_window_days=5, pumps_per_token_day=0.5)
    days = [START + timedelta(days=i) for i in range(5)]
    trades = pl.concat([trades_for_day(cfg, d) for d in days])
    tokens = tokens_for_day(cfg, days[-1])
    launched = tokens.filter(pl.col("created_at") >= pl.lit(START).cast(pl.Datetime("us", "UTC")))
    assert launched.height >= 3  # new tokens appear inside the window
    before = trades.join(launched, on="token").filter(pl.col("ts") < pl.col("created_at"))
    assert before.height == 0  # nobody trades a token before it exists
    size = (trades["price"] * trades["amount"]).to_numpy()
    # Heavy tail: the top 1% of trades carry far more than 1% of notional.
    top = sorted(size)[-len(size) // 100:]
    assert sum(top) / size.sum() > 0.05
    same_ms = 1 - trades.select(pl.struct("token", "ts").n_unique()).item() / trades.height
    assert same_ms > 0.05  # bursts share a millisecond (rush orders)
    events = pl.concat([events_for_day(cfg, d) for d in days]).unique()
    assert set(events["type"]) == {"pump", "dump"}
    # During pumps trades are denser and buy-heavy compared with the token's normal flow.
    pumps = events.filter(pl.col("type") == "pump")
    inside = trades.join(pumps, on="token").filter(pl.col("ts").is_between(pl.col("start_time"), pl.col("end_time"), closed="left"))
    assert inside.select((pl.col("side") == "buy").mean()).item() > trades.select((pl.col("side") == "buy").mean()).item() + 0.1


def test_events_crossing_midnight_appear_on_both_days():
    cfg = SyntheticConfig(tokens=40, pumps_per_token_day=3.0, launch_start=START)
    found = False
    for i in range(10):
        day = START + timedelta(days=i)
        nxt = events_for_day(cfg, day + timedelta(days=1))
        crossing = nxt.filter(pl.col("start_time") < pl.lit(day + timedelta(days=1)).cast(pl.Datetime("us", "UTC")))
        if crossing.height:
            today = events_for_day(cfg, day)
            assert crossing.join(today, on=["token", "type", "start_time", "end_time"]).height == crossing.height
            found = True
    assert found
