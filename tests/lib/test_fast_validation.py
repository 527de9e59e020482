"""The fast validation gate never passes a frame that pandera rejects (and agrees on clean ones)."""


import polars as pl
import pytest

from alevor_assets.lib.bars import time_bars
from alevor_assets.lib.contract import _fast_pass
from alevor_assets.lib.contract import check_contract
from alevor_assets.lib.schemas import SCHEMAS
from alevor_assets.lib.synthetic import trades_for_day
from tests.conftest import START, small_config


def _pandera_passes(asset: str, df: pl.DataFrame) -> bool:
    try:
        SCHEMAS[asset].validate(df, lazy=True)
        return True
    except Exception:
        return False


CORRUPTIONS = {
    "raw_trades": [
        lambda d: d.with_columns(price=pl.when(pl.int_range(pl.len()) == 3).then(-1.0).otherwise(pl.col("price"))),
        lambda d: d.with_columns(price=pl.when(pl.int_range(pl.len()) == 3).then(float("nan")).otherwise(pl.col("price"))),
        lambda d: d.with_columns(amount=pl.when(pl.int_range(pl.len()) == 3).then(float("inf")).otherwise(pl.col("amount"))),
        lambda d: d.with_columns(amount=pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("amount"))),
        lambda d: d.with_columns(side=pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("hold")).otherwise(pl.col("side"))),
        lambda d: d.with_columns(token=pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("")).otherwise(pl.col("token"))),
        lambda d: pl.concat([d, d.head(1)]),
        lambda d: d.with_columns(pl.col("trade_id").cast(pl.Float64)),
        lambda d: d.drop("side"),
    ],
    "bars": [
        lambda d: d.with_columns(high=pl.when(pl.int_range(pl.len()) == 3).then(pl.col("low") * 0.5).otherwise(pl.col("high"))),
        lambda d: d.with_columns(buy_volume=pl.col("buy_volume") * 1.5),
        lambda d: d.with_columns(trade_count=pl.when(pl.int_range(pl.len()) == 3).then(0).otherwise(pl.col("trade_count"))),
        lambda d: pl.concat([d, d.tail(1)]),
        lambda d: d.with_columns(vwap=pl.col("vwap") * 10),
        lambda d: d.with_columns(ts=pl.col("ts").reverse()),
    ],
}


@pytest.mark.parametrize("asset", sorted(CORRUPTIONS))
def test_fast_gate_agrees_with_pandera(asset):
    trades = trades_for_day(small_config(), START)
    clean = trades if asset == "raw_trades" else time_bars(trades, ["2s", "1m"])
    schema = SCHEMAS[asset].to_schema()
    assert _fast_pass(schema, clean) and _pandera_passes(asset, clean)
    for i, corrupt in enumerate(CORRUPTIONS[asset]):
        bad = corrupt(clean)
        assert not _pandera_passes(asset, bad), i
        assert not _fast_pass(schema, bad), i
        assert not check_contract(asset, bad).passed, i
