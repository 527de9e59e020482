from datetime import date, datetime, timezone

import polars as pl

from alevor_assets.lib.contract import check_contract

DAY = date(2024, 1, 2)


def _trades(rows):
    return pl.DataFrame(
        rows, schema={"token": pl.Utf8, "trade_id": pl.Int64, "ts": pl.Datetime("us", "UTC"), "price": pl.Float64,
                      "amount": pl.Float64, "side": pl.Utf8, "_origin": pl.Utf8}, orient="row",
    ).with_columns(pl.lit(DAY).alias("date"))


def test_every_broken_rule_is_named_with_counts_and_examples():
    t = datetime(2024, 1, 2, 12, tzinfo=timezone.utc)
    frame = _trades([
        ("A", 1, t, 1.0, 1.0, "buy", "f.csv:2"),
        ("A", 2, t, -5.0, 1.0, "sell", "f.csv:3"),
        ("A", 3, t, float("nan"), 1.0, "buy", "f.csv:4"),
        ("A", 4, t, 1.0, 1.0, "buy", "f.csv:5"),
        ("A", 4, t, 1.0, 2.0, "buy", "f.csv:6"),
        ("A", 5, datetime(2024, 1, 3, 0, 0, 1, tzinfo=timezone.utc), 1.0, 1.0, "hold", "f.csv:7"),
    ])
    report = check_contract("raw_trades", frame, ts_column="ts")
    rules = {(f.column, f.rule): f for f in report.failures}
    assert ("price", "greater_than(0)") in rules
    assert ("price", "not null or NaN") in rules
    assert (None, "unique key") in rules and rules[(None, "unique key")].count == 2
    assert ("ts", "ts within its partition's UTC day") in rules
    assert ("side", "isin(['buy', 'sell'])") in rules
    assert rules[("price", "greater_than(0)")].examples[0]["_origin"] == "f.csv:3"
    summary = report.summary()
    assert "f.csv:4" in summary and "row 5" in summary


def test_clean_frame_passes():
    t = datetime(2024, 1, 2, 12, tzinfo=timezone.utc)
    assert check_contract("raw_trades", _trades([("A", 1, t, 1.0, 1.0, "buy", "x")]), ts_column="ts").passed
