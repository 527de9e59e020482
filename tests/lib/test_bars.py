from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from alevor_assets import resample_trades
from alevor_assets.lib.bars import BAR_SCHEMA, time_bars
from alevor_assets.lib.synthetic import trades_for_day
from tests.conftest import START, small_config


def _trades(rows):
    return pl.DataFrame(
        rows, schema={"token": pl.Utf8, "trade_id": pl.Int64, "ts": pl.Int64, "price": pl.Float64, "amount": pl.Float64, "side": pl.Utf8},
        orient="row",
    ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def test_open_close_follow_ts_then_trade_id_whatever_the_row_order():
    t0 = 1_704_067_200_000_000  # 2024-01-01 00:00:00 UTC
    rows = [
        ("A", 7, t0 + 500_000, 10.0, 1.0, "buy"),   # same ts as id 3: id 3 comes first
        ("A", 3, t0 + 500_000, 11.0, 2.0, "sell"),
        ("A", 9, t0 + 1_999_999, 12.0, 1.0, "buy"),  # last µs of the first 2s bucket
        ("A", 1, t0 + 2_000_000, 13.0, 1.0, "buy"),  # next bucket despite the smaller id
        ("B", 5, t0 + 100, 5.0, 4.0, "sell"),
    ]
    expected = resample_trades(_trades(rows), "2s")
    for perm in ([4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):
        assert resample_trades(_trades([rows[i] for i in perm]), "2s").equals(expected)
    a0 = expected.row(0, named=True)
    assert (a0["token"], a0["open"], a0["close"], a0["high"], a0["low"]) == ("A", 11.0, 12.0, 12.0, 10.0)
    assert a0["volume"] == 4.0 and a0["buy_volume"] == 2.0 and a0["sell_volume"] == 2.0
    assert a0["trade_count"] == 3 and a0["quote_volume"] == 10 + 22 + 12
    assert a0["vwap"] == pytest.approx(44 / 4)
    assert expected["ts"].to_list()[:2] == [
        datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 1, 1, 0, 0, 2, tzinfo=timezone.utc)
    ]
    assert expected.height == 3  # empty buckets are not stored


def test_bars_equal_pandas_resample_on_generated_day():
    trades = trades_for_day(small_config(), START)
    ours = resample_trades(trades, "1m")
    pdf = trades.to_pandas().sort_values(["token", "ts", "trade_id"])
    pdf["qv"] = pdf.price * pdf.amount
    ref = pdf.set_index("ts").groupby("token").resample("1min").agg(
        {"price": ["first", "max", "min", "last"], "amount": "sum", "qv": "sum", "trade_id": "count"}
    )
    ref.columns = ["open", "high", "low", "close", "volume", "quote_volume", "trade_count"]
    ref = pl.from_pandas(ref[ref.trade_count > 0].reset_index())
    assert ref.height == ours.height
    joined = ours.join(ref, on=["token", "ts"], suffix="_pd")
    for col in ["open", "high", "low", "close", "volume", "quote_volume", "trade_count"]:
        np.testing.assert_allclose(joined[col].to_numpy(), joined[f"{col}_pd"].to_numpy(), rtol=1e-12)


def test_schema_alignment_and_multi_interval():
    trades = trades_for_day(small_config(), START)
    out = time_bars(trades, ["1m", "2s"])
    assert dict(out.schema) == BAR_SCHEMA
    assert out["interval"].unique(maintain_order=True).to_list() == ["2s", "1m"]
    for name, step in (("2s", 2_000_000), ("1m", 60_000_000)):
        ts = out.filter(pl.col("interval") == name)["ts"].dt.epoch("us")
        assert (ts % step == 0).all()
    # Every interval accounts for every trade.
    assert (out.group_by("interval").agg(pl.col("trade_count").sum())["trade_count"] == trades.height).all()


def test_rejects_naive_timestamps_and_missing_columns():
    trades = trades_for_day(small_config(), START)
    with pytest.raises(ValueError, match="timezone-aware"):
        resample_trades(trades.with_columns(pl.col("ts").dt.replace_time_zone(None)), "1m")
    with pytest.raises(ValueError, match="missing columns"):
        resample_trades(trades.drop("side"), "1m")
    with pytest.raises(ValueError, match="divide one day"):
        resample_trades(trades, "7m")


def test_empty_input_gives_empty_contract_frame():
    empty = trades_for_day(small_config(), START).clear()
    out = resample_trades(empty, "2s")
    assert out.height == 0 and dict(out.schema) == BAR_SCHEMA


def test_volume_and_dollar_bar_boundaries_by_hand():
    t0 = 1_704_067_200_000_000
    day = 86_400_000_000
    rows = [
        ("A", 1, t0 + 1, 10.0, 4.0, "buy"),    # bar 1: 4
        ("A", 2, t0 + 2, 10.0, 5.0, "sell"),   # bar 1: 9
        ("A", 3, t0 + 3, 11.0, 1.0, "buy"),    # bar 1: 10 -> reaches 10, closes here
        ("A", 4, t0 + 4, 12.0, 25.0, "buy"),   # bar 2: one trade far above the threshold closes it
        ("A", 5, t0 + 5, 13.0, 2.0, "sell"),   # bar 3 opens ...
        ("A", 6, t0 + day + 1, 14.0, 3.0, "buy"),  # ... and a new UTC day forces a new bar
        ("B", 7, t0 + 1, 1.0, 100.0, "buy"),   # another token never continues A's bar
    ]
    vol = resample_trades(_trades(rows), "volume_10")
    a = vol.filter(pl.col("token") == "A")
    assert a["trade_count"].to_list() == [3, 1, 1, 1]
    assert a["volume"].to_list() == [10.0, 25.0, 2.0, 3.0]
    assert a["open"].to_list() == [10.0, 12.0, 13.0, 14.0] and a["close"].to_list() == [11.0, 12.0, 13.0, 14.0]
    assert [(t - a["ts"][0]).total_seconds() * 1e6 for t in a["ts"]] == [0, 3, 4, day]  # ts = first trade
    assert set(vol["interval"]) == {"volume_10"}
    dollar = resample_trades(_trades(rows), "dollar_100")
    # quote 40, 50 (=90), 11 (=101 -> closes); 300 closes alone; 26; next day 42; B's 100 closes.
    assert dollar.filter(pl.col("token") == "A")["trade_count"].to_list() == [3, 1, 1, 1]
    assert dollar.filter(pl.col("token") == "B")["quote_volume"].to_list() == [100.0]
    # A burst in one microsecond is never split: the bar that reaches the threshold takes it all.
    # 6 + 6 reaches 10 at the second trade; the third shares its microsecond and stays with it.
    burst = [("C", i, t0 + (5 if i == 4 else 1), 1.0, 6.0, "buy") for i in range(1, 5)]
    c = resample_trades(_trades(burst), "volume_10")
    assert c["trade_count"].to_list() == [3, 1] and c["ts"].n_unique() == 2
    with pytest.raises(ValueError, match="threshold must be a positive number"):
        resample_trades(_trades(rows), "volume_-1")


def test_threshold_bars_account_for_every_trade():
    trades = trades_for_day(small_config(), START)
    out = time_bars(trades, ["dollar_20000", "2s"])
    assert out["interval"].unique(maintain_order=True).to_list() == ["2s", "dollar_20000"]
    d = out.filter(pl.col("interval") == "dollar_20000")
    assert d["trade_count"].sum() == trades.height
    # Every bar but each token's last reached the threshold, and only by its closing trade.
    full = d.filter(pl.col("ts") != pl.col("ts").max().over("token"))
    assert (full["quote_volume"] >= 20000).all()
