"""The threshold rules on a validation fold worked out by hand."""

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from alevor_assets.lib.detection import DetectionRules, DetectionSetup
from alevor_assets.lib.schemas import UTC_US
from alevor_assets.lib.thresholds import ThresholdRule, choose_threshold

D1 = datetime(2024, 1, 1, tzinfo=timezone.utc)
RULES = DetectionRules(cooldown=timedelta(minutes=10), pre_window=timedelta(0), post_window=timedelta(minutes=30))
EVENTS = pl.DataFrame(
    [("A", "pump", D1 + timedelta(hours=10), D1 + timedelta(hours=10, seconds=30), D1 + timedelta(hours=10), "given")],
    schema={"token": pl.Utf8, "type": pl.Utf8, "start_time": UTC_US, "end_time": UTC_US, "announced_time": UTC_US,
            "extent": pl.Utf8}, orient="row",
)
SETUP = DetectionSetup(EVENTS, ("pump",), timedelta(seconds=2), RULES)
# A validation fold of two token-days (A and B, one day each). Hours and scores:
FOLD = [("A", 8.0, 0.9), ("A", 9.0, 0.7), ("A", 10.001, 0.8), ("A", 15.0, 0.45), ("B", 12.0, 0.6), ("B", 13.0, 0.3)]
# Alerts outside the event's window at each threshold t (all alerts are more than 10 minutes apart):
#   t <= 0.3: A 8, 9, 15; B 12, 13 -> 5   t = 0.45: 4   t = 0.6: 3   t = 0.7: 2 (A 8, 9)
#   t = 0.8: 1 (A 8; A 10:00 is inside the pump)   t = 0.9: 1   above 0.9: 0


def fold() -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    rows = pl.DataFrame(
        {"token": [t for t, _, _ in FOLD], "ts": [D1 + timedelta(hours=h) for _, h, _ in FOLD]},
        schema={"token": pl.Utf8, "ts": UTC_US},
    )
    score = np.array([s for _, _, s in FOLD])
    y = np.array([0, 0, 1, 0, 0, 0])
    return rows, y, score


@pytest.mark.parametrize("budget, expected, false_alerts", [(1.0, 0.7, 2), (0.5, 0.8, 1), (2.0, 0.45, 4), (0.0, None, 0)])
def test_false_alert_budget_picks_the_lowest_threshold_within_the_budget(budget, expected, false_alerts):
    rows, y, score = fold()
    choice = choose_threshold(ThresholdRule("false_alert_budget", max_false_alerts_per_token_day=budget), y, score, rows, SETUP)
    assert choice.rule == "false_alert_budget"
    assert (choice.validation_false_alerts, choice.validation_token_days) == (false_alerts, 2)
    if expected is None:  # nothing but silence meets a zero budget
        assert choice.value > 0.9 and choice.value == pytest.approx(0.9)
    else:
        assert choice.value == expected


def test_the_budget_rule_does_not_depend_on_row_order():
    rows, y, score = fold()
    order = np.array([3, 0, 5, 1, 4, 2])
    rule = ThresholdRule("false_alert_budget", max_false_alerts_per_token_day=1.0)
    assert choose_threshold(rule, y[order], score[order], rows[order], SETUP).value == 0.7


def test_best_f1_and_fixed_rules():
    rows, y, score = fold()
    assert choose_threshold(ThresholdRule("best_f1"), y, score, rows, None).value == 0.8  # the only positive
    assert choose_threshold(ThresholdRule("fixed", value=0.42), y, score, rows, SETUP).value == 0.42


def test_threshold_rules_parse_from_the_spec_with_clear_errors():
    assert ThresholdRule.from_spec(None, detector=True) == ThresholdRule("false_alert_budget", max_false_alerts_per_token_day=1.0)
    assert ThresholdRule.from_spec(None, detector=False) == ThresholdRule("best_f1")
    assert ThresholdRule.from_spec({"rule": "fixed", "value": 0.3}, detector=False).value == 0.3
    with pytest.raises(ValueError, match="needs a detector"):
        ThresholdRule.from_spec({"rule": "false_alert_budget"}, detector=False)
    with pytest.raises(ValueError, match="must be one of best_f1, fixed, false_alert_budget"):
        ThresholdRule.from_spec({"rule": "youden"}, detector=True)
    with pytest.raises(ValueError, match=r"takes \['value'\]"):
        ThresholdRule.from_spec({"rule": "fixed", "max_false_alerts_per_token_day": 1}, detector=True)


def test_specs_carry_their_threshold_rule_and_alert_rules():
    from alevor_assets.lib.specs import SpecError, parse_spec

    base = {"name": "d", "interval": "2s", "trainer": {"name": "xgboost_classifier"}}
    detector = parse_spec({**base, "label": {"strategy": "pump_events"}, "alerts": {"cooldown": "5m", "pre_window": "0s"}})
    assert detector.threshold == ThresholdRule("false_alert_budget", max_false_alerts_per_token_day=1.0)
    assert (detector.alerts.cooldown, detector.alerts.pre_window) == (timedelta(minutes=5), timedelta(0))
    assert detector.alerts.post_window == timedelta(hours=1)  # the default
    other = parse_spec({**base, "label": {"strategy": "direction"}})
    assert other.threshold == ThresholdRule("best_f1")
    with pytest.raises(SpecError, match="alerts: only for detectors"):
        parse_spec({**base, "label": {"strategy": "direction"}, "alerts": {"cooldown": "5m"}})
    with pytest.raises(SpecError, match="needs a detector"):
        parse_spec({**base, "label": {"strategy": "direction"}, "threshold": {"rule": "false_alert_budget"}})
    with pytest.raises(SpecError, match="now max_false_alerts_per_token_day"):
        parse_spec({**base, "label": {"strategy": "pump_events"}, "gate": {"max_false_alarms_per_day": 2}})
    assert parse_spec({**base, "label": {"strategy": "pump_events"},
                       "gate": {"max_false_alerts_per_token_day": 1, "min_event_recall_timely": 0.9}}).gate
