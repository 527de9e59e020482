"""Start-only events: the reader accepts them and their extent is derived from the trades."""

from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest

from alevor_assets.lib.contract import check_contract
from alevor_assets.lib.event_extents import ExtentRules, day_events, derive_extents, extent_summary
from alevor_assets.lib.schemas import DATE_COLUMN, UTC_US
from alevor_assets.lib.sources import SourceError
from alevor_assets.lib.sources.events import read_events_csv
from alevor_assets.lib.warehouse import Warehouse

D1 = datetime(2024, 3, 1, tzinfo=timezone.utc)
RULES = ExtentRules(lead=timedelta(minutes=1), peak_window=timedelta(minutes=5), min_rise=0.02)


def at(hhmmss: str, day: datetime = D1) -> datetime:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return day + timedelta(hours=h, minutes=m, seconds=s)


def trades(rows: list[tuple[str, datetime, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(tok, i, ts, price, 1.0, "buy") for i, (tok, ts, price) in enumerate(rows)],
        schema={"token": pl.Utf8, "trade_id": pl.Int64, "ts": UTC_US, "price": pl.Float64, "amount": pl.Float64,
                "side": pl.Utf8}, orient="row",
    )


MARKET = trades([
    ("T", at("11:00:00"), 1.00), ("T", at("11:58:30"), 1.00),
    # 12:00 pump: peak 1.30 at 12:00:40, then the dump
    ("T", at("12:00:05"), 1.01), ("T", at("12:00:20"), 1.10), ("T", at("12:00:40"), 1.30), ("T", at("12:00:41"), 1.30),
    ("T", at("12:01:30"), 1.20), ("T", at("12:20:00"), 1.02),
    # 16:00 announcement that did not move the price
    ("T", at("15:30:00"), 1.00), ("T", at("16:00:30"), 1.005), ("T", at("16:03:00"), 0.99),
    # 20:00: the pump broke out 40 s before its (late) announced minute and peaked before it
    ("T", at("19:50:00"), 1.00), ("T", at("19:59:20"), 1.05), ("T", at("19:59:30"), 1.20), ("T", at("20:00:10"), 1.10),
    # U trades only after its announcement: nothing to compare with
    ("U", at("09:00:30"), 2.0), ("U", at("09:01:00"), 3.0),
])


def announced(*rows: tuple[str, datetime]) -> pl.DataFrame:
    return pl.DataFrame([(t, "pump", a, None) for t, a in rows],
                        schema={"token": pl.Utf8, "type": pl.Utf8, "start_time": UTC_US, "end_time": UTC_US}, orient="row")


def test_start_only_events_get_derived_flat_or_no_data_extents():
    events = announced(("T", at("12:00:00")), ("T", at("16:00:00")), ("T", at("20:00:00")), ("U", at("09:00:00")))
    out = derive_extents(events, MARKET, RULES).sort("announced_time")
    got = {r["announced_time"].strftime("%H:%M"): r for r in out.iter_rows(named=True)}
    pump = got["12:00"]
    assert (pump["extent"], pump["start_time"], pump["end_time"]) == ("derived", at("12:00:00"), at("12:00:40") + timedelta(microseconds=1))
    assert (pump["reference_price"], pump["peak_price"], pump["rise"]) == (1.0, 1.3, pytest.approx(0.3))
    flat = got["16:00"]
    assert (flat["extent"], flat["rise"]) == ("flat", pytest.approx(0.005))
    assert (flat["start_time"], flat["end_time"]) == (at("15:59:00"), at("16:05:00"))  # the whole searched window
    early = got["20:00"]
    assert (early["extent"], early["start_time"], early["end_time"]) == ("derived", at("19:59:20"), at("19:59:30") + timedelta(microseconds=1))
    assert got["09:00"]["extent"] == "no_data" and got["09:00"]["reference_price"] is None
    counts, table = extent_summary(out)
    assert counts == {"given": 0, "derived": 2, "flat": 1, "no_data": 1}
    assert "| T | 2024-03-01 16:00:00 | flat |" in table and "| U | 2024-03-01 09:00:00 | no_data |" in table
    # A larger minimum rise turns the 12:00 pump flat too.
    assert derive_extents(announced(("T", at("12:00:00"))), MARKET, ExtentRules(min_rise=0.5))["extent"].to_list() == ["flat"]


def test_an_event_that_peaks_after_midnight_is_the_same_in_both_days_partitions(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    d2 = D1 + timedelta(days=1)
    day1 = trades([("T", at("20:00:00"), 1.0), ("T", at("23:59:30"), 1.05)])
    day2 = trades([("T", at("00:02:00", d2), 1.4), ("T", at("00:30:00", d2), 1.1)])
    for day, frame in ((D1.date(), day1), (d2.date(), day2)):
        wh.write_partition("raw_trades", day, frame)
    events = announced(("T", at("23:59:00")))
    first = day_events(wh, D1.date(), events, RULES)
    second = day_events(wh, d2.date(), events, RULES)
    assert first.equals(second) and first.height == 1
    row = first.row(0, named=True)
    assert (row["extent"], row["end_time"], row["rise"]) == ("derived", at("00:02:00", d2) + timedelta(microseconds=1), pytest.approx(0.4))
    assert check_contract("labelled_events", first.with_columns(pl.lit(D1.date()).alias(DATE_COLUMN))).passed
    assert day_events(wh, date(2024, 3, 3), events, RULES).height == 0


def test_the_reader_accepts_start_only_pump_lists(tmp_path):
    path = tmp_path / "pumps.csv"
    path.write_text("token,start_time\nNULS/BTC,2020-01-30T17:00:00Z\nRDN/BTC,1580562000000\n")
    events = read_events_csv(path)
    assert events["type"].to_list() == ["pump", "pump"] and events["end_time"].null_count() == 2
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("token,type,start_time,end_time\nA,dump,2024-01-01T10:00:00Z,2024-01-01T10:05:00Z\nB,pump,2024-01-01T11:00:00Z,\n")
    events = read_events_csv(mixed).sort("token")
    assert events["end_time"].is_null().to_list() == [False, True] and events["type"].to_list() == ["dump", "pump"]
    bad = tmp_path / "bad.csv"
    bad.write_text("token,start_time,end_time\nA,2024-01-01T10:00:00Z,soon\n")
    with pytest.raises(SourceError, match=r"bad.csv:2: end_time is not a time with a zone"):
        read_events_csv(bad)
    with pytest.raises(SourceError, match=r"missing \['start_time'\]"):
        (tmp_path / "nostart.csv").write_text("token,when\nA,1\n")
        read_events_csv(tmp_path / "nostart.csv")


def test_extent_rules_are_checked():
    assert ExtentRules.from_settings({"lead": "0s", "peak_window": "10m", "min_rise": 0.05}) == ExtentRules(
        timedelta(0), timedelta(minutes=10), 0.05)
    with pytest.raises(ValueError, match="unknown key"):
        ExtentRules.from_settings({"window": "5m"})
    with pytest.raises(ValueError, match="min_rise must be > 0"):
        ExtentRules.from_settings({"min_rise": 0})
