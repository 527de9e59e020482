"""How a classifier's decision threshold is chosen on the validation fold: the spec's
``threshold:`` rule, applied the same way in the final fit and in every walk-forward fold.

- ``best_f1`` (default for classifiers that are not detectors): the threshold with the best F1 of
  the positive class (the largest label) on the validation fold.
- ``fixed`` (``{rule: fixed, value: 0.5}``): always ``value``.
- ``false_alert_budget`` (default for detectors, ``max_false_alerts_per_token_day`` 1.0): the
  lowest threshold whose alerts on the validation fold (``lib/alerts.py``, with the spec's
  cooldown) include at most that many false alerts per token-day with data
  (``lib/detection.py``). Candidates are the distinct validation scores, scanned from low to high
  (at most 512 of them evenly spaced by rank, then every score between the last one that failed
  and the first one that passed), and one just above the highest score (no alert at all), so a
  threshold always exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from alevor_assets.lib.alerts import alert_mask
from alevor_assets.lib.detection import DetectionSetup, as_event_frame, event_windows, in_any_window, token_days
from alevor_assets.lib.validation import best_f1_threshold

RULES = ("best_f1", "fixed", "false_alert_budget")
GRID = 512


@dataclass(frozen=True)
class ThresholdRule:
    rule: str = "best_f1"
    value: float | None = None
    max_false_alerts_per_token_day: float | None = None

    @classmethod
    def from_spec(cls, raw: dict[str, Any] | None, detector: bool) -> ThresholdRule:
        """The spec's ``threshold:`` (default: ``false_alert_budget`` at 1.0 per token-day for
        detectors, ``best_f1`` otherwise)."""
        if not raw:
            return cls("false_alert_budget", max_false_alerts_per_token_day=1.0) if detector else cls()
        rule = str(raw.get("rule", ""))
        allowed = {"best_f1": {"rule"}, "fixed": {"rule", "value"},
                   "false_alert_budget": {"rule", "max_false_alerts_per_token_day"}}
        if rule not in allowed:
            raise ValueError(f"threshold.rule must be one of {', '.join(RULES)}; got {rule!r}")
        unknown = set(raw) - allowed[rule]
        if unknown:
            raise ValueError(f"threshold: rule {rule} takes {sorted(allowed[rule] - {'rule'})}, not {sorted(unknown)}")
        if rule == "fixed":
            value = float(raw.get("value", 0.5))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"threshold.value must be in [0, 1], got {value}")
            return cls(rule, value=value)
        if rule == "false_alert_budget":
            if not detector:
                raise ValueError("threshold rule false_alert_budget needs a detector (a label strategy that detects events)")
            budget = float(raw.get("max_false_alerts_per_token_day", 1.0))
            if budget < 0:
                raise ValueError(f"threshold.max_false_alerts_per_token_day must be >= 0, got {budget}")
            return cls(rule, max_false_alerts_per_token_day=budget)
        return cls(rule)

    def describe(self) -> str:
        if self.rule == "fixed":
            return f"fixed at {self.value:g}"
        if self.rule == "false_alert_budget":
            return (f"lowest threshold with at most {self.max_false_alerts_per_token_day:g} false alerts per "
                    "token-day on the validation fold")
        return "best F1 on the validation fold"


@dataclass(frozen=True)
class ThresholdChoice:
    value: float
    rule: str
    # What the rule saw on the validation fold at that threshold (false_alert_budget).
    validation_false_alerts: int | None = None
    validation_token_days: int | None = None

    def describe(self) -> dict[str, Any]:
        return {"value": self.value, "rule": self.rule, "validation_false_alerts": self.validation_false_alerts,
                "validation_token_days": self.validation_token_days}


def choose_threshold(
    rule: ThresholdRule, y_positive: np.ndarray, score: np.ndarray, rows: pl.DataFrame, setup: DetectionSetup | None
) -> ThresholdChoice:
    """The threshold ``rule`` picks on the validation fold: ``y_positive`` (0/1), binary
    ``score`` and the fold's ``rows`` (``token``, ``ts`` bar starts, in the order of ``score``)."""
    if rule.rule == "fixed":
        return ThresholdChoice(float(rule.value if rule.value is not None else 0.5), rule.rule)
    if rule.rule == "best_f1" or setup is None:
        return ThresholdChoice(best_f1_threshold(y_positive, score), "best_f1")
    return _false_alert_budget(rule.max_false_alerts_per_token_day or 0.0, score, rows, setup)


def _false_alert_budget(budget: float, score: np.ndarray, rows: pl.DataFrame, setup: DetectionSetup) -> ThresholdChoice:
    frame = rows.select("token", "ts").with_columns(pl.Series("score", score, dtype=pl.Float64)).with_row_index("_i")
    frame = frame.sort("token", "ts", "_i")
    known = frame["ts"].dt.epoch("us").to_numpy() + int(setup.step.total_seconds() * 1_000_000)
    codes = frame["token"].rle_id().to_numpy()
    s = frame["score"].to_numpy()
    outside = ~in_any_window(frame["token"], known, event_windows(as_event_frame(setup.events), setup.rules))
    n_days = token_days(frame["token"], frame["ts"].dt.epoch("us").to_numpy()).height
    cooldown_us = int(setup.rules.cooldown.total_seconds() * 1_000_000)

    def false_alerts(threshold: float) -> int:
        return int((alert_mask(codes, known, s, threshold, cooldown_us) & outside).sum())

    finite = s[np.isfinite(s)]
    top = float(np.nextafter(finite.max(), np.inf)) if len(finite) else 1.0
    candidates = np.append(np.unique(finite), top)
    allowed = budget * n_days

    def first_passing(cands: np.ndarray) -> int | None:
        return next((i for i, t in enumerate(cands) if false_alerts(float(t)) <= allowed), None)

    grid_idx = np.unique(np.linspace(0, len(candidates) - 1, min(GRID, len(candidates))).round().astype(int))
    k = first_passing(candidates[grid_idx])
    assert k is not None  # the last candidate raises no alert at all
    chosen = float(candidates[grid_idx[k]])
    if k > 0:
        between = candidates[grid_idx[k - 1] + 1: grid_idx[k]]
        j = first_passing(between)
        chosen = float(between[j]) if j is not None else chosen
    return ThresholdChoice(chosen, "false_alert_budget", false_alerts(chosen), n_days)
