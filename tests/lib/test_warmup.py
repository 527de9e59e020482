"""The warm-up walk: how far back each token of a day reads, worked out by hand."""

from collections import Counter
from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest

from alevor_assets.lib.feature_catalog import FeatureConfig
from alevor_assets.lib.schemas import UTC_US
from alevor_assets.lib.warehouse import Warehouse
from alevor_assets.lib.warmup import History, WarmupNeeds, walk_back

D = date(2024, 1, 20)


def _counts(rows):
    """rows: (token, day, n); each day's first bar at its midnight."""
    return pl.DataFrame(
        [(t, d, n, int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp() * 1e6)) for t, d, n in rows],
        schema={"token": pl.Utf8, "day": pl.Date, "n": pl.Int64, "first_us": pl.Int64}, orient="row",
    )


def test_each_token_walks_back_until_its_window_is_full_or_a_gap():
    day = lambda n: date(2024, 1, n)  # noqa: E731
    history = _counts([
        ("A", day(19), 3), ("A", day(18), 4), ("A", day(17), 1), ("A", day(10), 50),  # 3 + 4 >= 5 on the 18th
        ("B", day(19), 2), ("B", day(14), 10),  # 15th-18th silent (4 >= 3 days): a new series on the 19th
        ("E", day(17), 1), ("E", day(15), 1), ("E", day(12), 10),  # 13th-14th silent (2 < 3): one series
    ])
    tokens = pl.DataFrame({"token": ["A", "B", "C", "E"]})
    got = walk_back(D, tokens, history, need=5, reach_us=0, gap_days=3, window_lo=day(1), lo=day(1))
    rows = {r["token"]: r for r in got.iter_rows(named=True)}
    assert rows["A"]["start"] == day(18) and rows["A"]["examined"] == day(18)
    # B never fills its window: it reads its whole series; a missing partition on the 16th-18th
    # could hold its trades (and join the series), one on the 15th could not.
    assert rows["B"]["start"] == day(19) and rows["B"]["examined"] == day(16)
    assert rows["C"]["start"] == D and rows["C"]["examined"] == day(17)  # nothing before it
    assert rows["E"]["start"] == day(12) and rows["E"]["examined"] == day(12)
    assert got["conclusive"].all()
    # A narrower window that ends before E's window fills is not conclusive for E (the walk widens).
    seen = history.filter(pl.col("day") >= day(14))
    narrow = walk_back(D, tokens, seen, need=5, reach_us=0, gap_days=3, window_lo=day(14), lo=day(1))
    assert dict(zip(narrow["token"], narrow["conclusive"])) == {"A": True, "B": True, "C": True, "E": False}
    # A wall-clock reach: the window also needs a bar at least that long before the day (the
    # 17th's first bar is 3 days before the 20th; the 18th's only 2).
    far = walk_back(D, tokens, history, need=5, reach_us=int(2.5 * 86_400e6), gap_days=3, window_lo=day(1), lo=day(1))
    assert dict(zip(far["token"], far["start"]))["A"] == day(17)


def _write_day(wh: Warehouse, day: date, bars_per_token: dict[str, int]) -> None:
    """Hourly bars and one buy trade per bar for each token on ``day``."""
    base = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    rows = [(t, base + timedelta(hours=h)) for t, n in sorted(bars_per_token.items()) for h in range(n)]
    bars = pl.DataFrame({"token": [t for t, _ in rows], "ts": [ts for _, ts in rows]}, schema={"token": pl.Utf8, "ts": UTC_US})
    wh.write_partition("bars", day, bars, {"interval": "1h"})
    trades = bars.with_columns(pl.lit("buy").alias("side"))
    wh.write_partition("raw_trades", day, trades)


def test_a_day_whose_walk_reaches_a_day_never_materialized_is_not_built(tmp_path):
    wh = Warehouse(tmp_path / "warehouse")
    first = date(2024, 1, 1)
    days = [first + timedelta(days=i) for i in range(6)]
    for d in days:
        if d != days[2]:  # the 3rd was never materialized
            _write_day(wh, d, {"T": 2, "U": 24})
    needs = WarmupNeeds.of(FeatureConfig(spans=(), rush_chunks={"1h": 5}), warmup_bars=4, max_days=400, first_day=first)
    history = History(wh, needs)
    # U has 24 bars (and 1-hour buy chunks) a day: the 5th alone fills its windows. T has 2 a
    # day: its bars (4) are in the 4th and 5th, but its chunks (5 + 1) reach across the 3rd, so
    # the 6th cannot be built.
    plan = history.plan(days[5], ["1h"])
    assert plan.bars_from["1h"] == {"T": days[3], "U": days[4]}
    assert plan.missing == {"raw_trades": [days[2]]}
    assert plan.reason() == (
        "its warm-up needs raw_trades of 2024-01-03, never materialized; materialize raw_trades for those days, "
        "then 2024-01-06 again"
    )
    # From the 5th, T's bars cross the 3rd as well.
    assert history.plan(days[4], ["1h"]).missing == {"bars interval=1h": [days[2]], "raw_trades": [days[2]]}
    _write_day(wh, days[2], {"T": 2, "U": 24})
    fresh = History(wh, needs).plan(days[5], ["1h"])
    assert fresh.reason() is None and fresh.trades_from == {"T": days[2], "U": days[4]}
    # Bounded by the first partition day and by max_warmup_days.
    short = History(wh, WarmupNeeds.of(FeatureConfig(spans=(), rush_chunks={}), 100, max_days=2, first_day=first))
    assert short.plan(days[5], ["1h"]).bars_from["1h"] == {"T": days[3], "U": days[3]}


def test_a_gap_stops_the_walk_so_missing_days_beyond_it_do_not_matter(tmp_path):
    wh = Warehouse(tmp_path / "warehouse")
    first = date(2024, 1, 1)
    _write_day(wh, first, {"T": 5})  # then the 2nd..9th never materialized, the 10th..17th empty
    for i in range(9, 17):
        _write_day(wh, first + timedelta(days=i), {})
    _write_day(wh, first + timedelta(days=17), {"T": 1})
    needs = WarmupNeeds.of(FeatureConfig(spans=(), rush_chunks={}, max_gap="7d"), 1000, 400, first)
    plan = History(wh, needs).plan(first + timedelta(days=17), ["1h"])
    assert plan.reason() is None and plan.bars_from["1h"] == {"T": first + timedelta(days=17)}
    # With a longer max_gap the walk goes on into the days never materialized.
    longer = WarmupNeeds.of(FeatureConfig(spans=(), rush_chunks={}, max_gap="30d"), 1000, 400, first)
    assert History(wh, longer).plan(first + timedelta(days=17), ["1h"]).missing["bars interval=1h"][0] == date(2024, 1, 2)


def test_a_long_backfill_reads_each_days_counts_once(tmp_path, monkeypatch):
    wh = Warehouse(tmp_path / "warehouse")
    first = date(2024, 1, 1)
    days = [first + timedelta(days=i) for i in range(30)]
    for d in days:
        _write_day(wh, d, {"T": 1})
    reads: Counter = Counter()
    scan, read = pl.scan_parquet, pl.read_parquet
    monkeypatch.setattr(pl, "scan_parquet", lambda path, *a, **k: reads.update([str(path)]) or scan(path, *a, **k))
    monkeypatch.setattr(pl, "read_parquet", lambda path, *a, **k: reads.update([str(path)]) or read(path, *a, **k))
    history = History(wh, WarmupNeeds.of(FeatureConfig(spans=(), rush_chunks={"1h": 100}), 1000, 400, first))
    for d in days:  # every day walks back to the first: 435 day-visits per family
        plan = history.plan(d, ["1h"])
        assert plan.reason() is None and set(plan.bars_from["1h"].values()) <= {first, d}
    # Each day's raw_trades and (but the last day's, never anyone's history) its bars: once.
    assert max(reads.values()) == 1 and len(reads) == 2 * len(days) - 1


@pytest.mark.parametrize("bad", ["12h", "0d", "week"])
def test_max_gap_is_whole_days(bad):
    with pytest.raises(ValueError, match="max_gap|invalid duration"):
        FeatureConfig(max_gap=bad)
