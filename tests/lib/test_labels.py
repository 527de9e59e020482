from datetime import datetime, timezone

import polars as pl
import pytest

from alevor_assets.lib.labels import LabelContext, finalize_labels, make_label_strategy

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
US = 1_000_000


def _bars(closes_at: dict[int, float], interval="1m", token="T"):
    secs = sorted(closes_at)
    return pl.DataFrame({
        "token": [token] * len(secs), "interval": [interval] * len(secs),
        "ts": pl.Series([int(T0.timestamp()) * US + s * US for s in secs]).cast(pl.Datetime("us", "UTC")),
        "close": [closes_at[s] for s in secs],
    })


def test_forward_return_uses_the_last_close_at_or_before_the_horizon():
    # 1m bars at 0, 60, 120 and 600 s. Horizon 2m after each bar's end.
    bars = _bars({0: 100.0, 60: 110.0, 120: 99.0, 600: 120.0})
    s = make_label_strategy("forward_return", {"horizon": "2m"})
    out = finalize_labels(s.compute(LabelContext(bars, "1m")), "fr", "1m", s.task, None)
    # bar 0 ends at 60, target 180: last bar ending <= 180 is the 120 s bar -> 99/100 - 1
    # bar 60 ends at 120, target 240: same -> 99/110 - 1; bar 120 -> target 300: still 99 -> 0
    # bar 600 -> target 780: only itself -> 0
    assert out["label"].to_list() == pytest.approx([99 / 100 - 1, 99 / 110 - 1, 0.0, 0.0])
    ends = [(t - T0).total_seconds() for t in out["horizon_end"].to_list()]
    assert ends == [180, 240, 300, 780]


def test_direction_and_incomplete_horizons_are_left_out():
    bars = _bars({0: 100.0, 60: 101.0, 120: 100.5})
    s = make_label_strategy("direction", {"horizon": "1m", "threshold": 0.0})
    raw = s.compute(LabelContext(bars, "1m"))
    data_end = int(T0.timestamp()) * US + 180 * US
    out = finalize_labels(raw, "dir", "1m", s.task, data_end)
    # bar 0 -> close at 120 s (bar 60 ends at 120): 101 > 100 -> 1; bar 60 -> 100.5 < 101 -> 0;
    # bar 120's horizon (240 s) is beyond the data (180 s): left out until it is covered.
    assert out["label"].to_list() == [1, 0]
    assert out["label"].dtype == pl.Int64


def test_pump_events_label_bars_that_overlap_an_event():
    bars = _bars({0: 1.0, 60: 1.0, 120: 1.0, 180: 1.0, 240: 1.0})
    events = pl.DataFrame({
        "token": ["T", "T", "OTHER"], "type": ["pump", "dump", "pump"],
        "start_time": [T0.replace(second=30), T0.replace(minute=2, second=0), T0],
        "end_time": [T0.replace(minute=2), T0.replace(minute=3, second=1), T0.replace(minute=5)],
    }).with_columns(pl.col("start_time", "end_time").dt.cast_time_unit("us"))
    binary = make_label_strategy("pump_events")
    out = binary.compute(LabelContext(bars, "1m", events=events))
    # pump [0:30, 2:00) touches bars 0 and 60; the dump is ignored by the binary variant.
    assert out["label"].to_list() == [1, 1, 0, 0, 0]
    multi = make_label_strategy("pump_events", {"classes": {"pump": 1, "dump": 2}})
    out = multi.compute(LabelContext(bars, "1m", events=events))
    # dump [2:00, 3:01) touches bars 120 and 180 (the latter by one second).
    assert out["label"].to_list() == [1, 1, 2, 2, 0]


def test_unknown_strategy_or_parameter_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown label strategy"):
        make_label_strategy("nope")
    with pytest.raises(ValueError, match="no parameter"):
        make_label_strategy("forward_return", {"horizn": "1m"})
