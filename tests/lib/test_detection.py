"""Detector metrics on a case worked out by hand: alerts with a cooldown, events, token-days."""

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from alevor_assets.lib.alerts import raise_alerts
from alevor_assets.lib.detection import DetectionRules, DetectionSetup, evaluate_detections, label_episodes
from alevor_assets.lib.schemas import UTC_US

D1 = datetime(2024, 1, 1, tzinfo=timezone.utc)
D2 = D1 + timedelta(days=1)
STEP = timedelta(seconds=2)
RULES = DetectionRules(cooldown=timedelta(minutes=10), pre_window=timedelta(minutes=1),
                       post_window=timedelta(minutes=30), timely=timedelta(seconds=30))


def at(day: datetime, hhmmss: str) -> datetime:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return day + timedelta(hours=h, minutes=m, seconds=s)


def events() -> pl.DataFrame:
    rows = [
        # token, type, start, end, announced, extent
        ("A", "pump", at(D1, "10:00:00"), at(D1, "10:00:40"), at(D1, "10:00:00"), "derived"),  # E1: detected
        ("A", "pump", at(D1, "13:59:00"), at(D1, "14:05:00"), at(D1, "14:00:00"), "flat"),     # E2: not counted
        ("B", "pump", at(D1, "11:00:00"), at(D1, "11:01:00"), at(D1, "11:00:00"), "given"),    # E3: missed
        ("C", "pump", at(D1, "12:00:00"), at(D1, "12:01:00"), at(D1, "12:00:00"), "given"),    # E4: C has no rows
        ("B", "dump", at(D1, "18:00:00"), at(D1, "18:10:00"), at(D1, "18:00:00"), "given"),    # not a pump
    ]
    return pl.DataFrame(rows, schema={"token": pl.Utf8, "type": pl.Utf8, "start_time": UTC_US, "end_time": UTC_US,
                                      "announced_time": UTC_US, "extent": pl.Utf8}, orient="row")


def scored_rows() -> pl.DataFrame:
    rows = [
        ("A", at(D1, "09:30:00"), 0.90),  # alert (known 09:30:02): no event near -> false
        ("A", at(D1, "09:35:00"), 0.90),  # inside the cooldown: no alert
        ("A", at(D1, "10:00:10"), 0.80),  # alert at 10:00:12: E1 detected, delay 12 s
        ("A", at(D1, "10:05:00"), 0.95),  # cooldown
        ("A", at(D1, "10:20:00"), 0.70),  # alert in E1's dump window (to 10:30:40): not false
        ("A", at(D1, "14:01:00"), 0.90),  # alert inside the flat event's window: neither
        ("A", at(D1, "20:00:00"), 0.60),  # alert: false
        ("A", at(D2, "08:00:00"), 0.20),  # a second token-day of A, no alert
        ("B", at(D1, "11:00:00"), 0.40),  # below the threshold: E3 missed
        ("B", at(D1, "11:40:00"), 0.55),  # alert after E3's window (to 11:31): false
        ("B", at(D1, "18:05:00"), 0.30),  # during B's dump event, below threshold
    ]
    return pl.DataFrame(rows, schema={"token": pl.Utf8, "ts": UTC_US, "score": pl.Float64}, orient="row")


def setup() -> DetectionSetup:
    return DetectionSetup(events(), ("pump",), STEP, RULES)


def alerts_of(rows: pl.DataFrame, threshold: float = 0.5) -> pl.DataFrame:
    known = rows.with_columns(pl.col("ts") + STEP)  # a score is known when its bar closes
    return raise_alerts(known.sample(fraction=1.0, shuffle=True, seed=3), threshold, RULES.cooldown)


def test_alerts_keep_a_per_token_cooldown():
    alerts = alerts_of(scored_rows())
    got = [(t, ts.strftime("%d %H:%M:%S")) for t, ts in alerts.select("token", "ts").iter_rows()]
    assert got == [("A", "01 09:30:02"), ("A", "01 10:00:12"), ("A", "01 10:20:02"), ("A", "01 14:01:02"),
                   ("A", "01 20:00:02"), ("B", "01 11:40:02")]
    # Without a cooldown every row at or above the threshold alerts.
    assert raise_alerts(scored_rows(), 0.5, timedelta(0)).height == 8
    with pytest.raises(ValueError, match="cooldown"):
        raise_alerts(scored_rows(), 0.5, timedelta(seconds=-1))


def test_per_event_recall_delay_and_false_alerts_per_token_day():
    result = evaluate_detections(scored_rows(), alerts_of(scored_rows()), setup())
    m = result.metrics
    assert (m["events"], m["events_detected"], m["event_recall"]) == (2, 1, 0.5)
    assert (m["events_detected_timely"], m["event_recall_timely"]) == (1, 0.5)
    assert (m["detection_delay_s"], m["detection_delay_max_s"]) == (12.0, 12.0)
    # False: A 09:30, A 20:00, B 11:40. The dump alert at 10:20 and the flat event's 14:01 are not.
    assert (m["alerts"], m["false_alerts"]) == (6, 3)
    # Token-days with data: A on both days, B on the first; C has none.
    assert m["token_days"] == 3 and m["false_alerts_per_token_day"] == pytest.approx(1.0)
    assert m["events_not_counted"] == 2
    outcomes = [(e["token"], e["announced"][11:], e["outcome"], e["delay_s"]) for e in result.events]
    assert outcomes == [
        ("A", "10:00:00", "detected", 12.0),
        ("B", "11:00:00", "missed", None),
        ("C", "12:00:00", "not counted: no rows that day", None),
        ("A", "14:00:00", "not counted: flat", 62.0),
    ]
    assert result.events[0]["first_alert"] == "2024-01-01 10:00:12"


def test_an_alert_before_the_announcement_counts_within_the_pre_window_with_a_negative_delay():
    rows = pl.DataFrame({"token": ["A"] * 3, "ts": [at(D1, "09:59:20"), at(D1, "09:58:00"), at(D1, "10:10:00")],
                         "score": [0.9, 0.1, 0.1]}, schema={"token": pl.Utf8, "ts": UTC_US, "score": pl.Float64})
    m = evaluate_detections(rows, alerts_of(rows), setup()).metrics
    assert (m["events_detected"], m["detection_delay_s"], m["false_alerts"]) == (1, -38.0, 0)
    no_pre = DetectionSetup(events(), ("pump",), STEP, DetectionRules(pre_window=timedelta(0)))
    m = evaluate_detections(rows, alerts_of(rows), no_pre).metrics
    assert (m["events_detected"], m["false_alerts"]) == (0, 1)


def test_the_false_alert_rate_divides_by_token_days_with_data_not_by_calendar_days():
    # One false alert a week apart on the same token: two token-days with data, not seven days.
    rows = pl.DataFrame({"token": ["Z", "Z"], "ts": [at(D1, "09:00:00"), at(D1 + timedelta(days=7), "09:00:00")],
                         "score": [0.9, 0.1]}, schema={"token": pl.Utf8, "ts": UTC_US, "score": pl.Float64})
    m = evaluate_detections(rows, alerts_of(rows), setup()).metrics
    assert (m["false_alerts"], m["token_days"], m["false_alerts_per_token_day"]) == (1, 2, 0.5)
    assert m["events"] == 0 and m["event_recall"] is None


def test_label_episodes_become_events_for_detectors_without_labelled_events():
    ts = [at(D1, "10:00:00") + k * STEP for k in range(6)] + [at(D1, "11:00:00")]
    rows = pl.DataFrame({"token": ["A"] * 7, "ts": ts, "label": [0, 1, 1, 0, 1, 1, 1]},
                        schema={"token": pl.Utf8, "ts": UTC_US, "label": pl.Int64})
    eps = label_episodes(rows, STEP)
    assert [(s.strftime("%H:%M:%S"), e.strftime("%H:%M:%S")) for s, e in eps.select("start_time", "end_time").iter_rows()] == [
        ("10:00:02", "10:00:06"), ("10:00:08", "10:00:12"), ("11:00:00", "11:00:02")]
