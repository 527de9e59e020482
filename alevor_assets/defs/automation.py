"""Declarative automation: when each asset should rebuild itself.

Nothing here runs by itself: the automation sensor (`automation_sensor`, shipped stopped)
evaluates these conditions once a tick. The `new_trades_sensor` rebuilds `raw_trades` for the days
whose source data changed; from there every partition whose inputs were updated follows, in
dependency order, and a model retrains only when its drift asset reports that its training data
changed or its features drifted.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

AC = dg.AutomationCondition


def follow_upstream(require: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """Rebuild a partition (any partition, not only the newest) once inputs it reads were updated
    and none are still being built. By default every input must exist; with ``require``, only
    those: an asset that reads earlier days as warm-up or later days as label horizons names its
    same-day inputs here, because the neighbouring days may legitimately not exist."""
    condition = AC.any_deps_updated().since_last_handled() & ~AC.any_deps_in_progress() & ~AC.in_progress()
    if require is None:
        condition = condition & ~AC.any_deps_missing()
    else:
        condition = condition & ~AC.any_deps_match(AC.missing()).allow(require)
    return condition.with_label("follow upstream updates")


def retrain_when_needed(drift_key: dg.AssetKey) -> dg.AutomationCondition:
    """Retrain once the drift asset has just reported a failed check (training data changed, or
    features drifted), ignoring drift results produced by a run that trained this model itself."""
    drift_failed = (
        AC.newly_updated() & ~AC.executed_with_root_target() & AC.any_checks_match(AC.check_failed())
    ).with_label("drift check failed")
    return (
        AC.any_deps_match(drift_failed).allow(dg.AssetSelection.assets(drift_key)).since_last_handled()
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
    ).with_label("retrain on changed training data or drift")


def score_new_data_and_promotions(features: dg.AssetKey, promoted: dg.AssetKey, rescore_days: int) -> dg.AutomationCondition:
    """Score a day once its features were updated (any day), and rescore the newest
    ``rescore_days`` days once when a new version is promoted (the promoted asset's data version
    changed: it is materialized after every validation, promoted or not). Only the day's features
    must exist: without a promoted version the day is scored by the spec's fallback."""
    trigger = AC.any_deps_match(AC.newly_updated()).allow(dg.AssetSelection.assets(features))
    if rescore_days:
        promoted_updated = AC.any_deps_match(AC.data_version_changed()).allow(dg.AssetSelection.assets(promoted))
        trigger = trigger | (promoted_updated & AC.in_latest_time_window(timedelta(days=rescore_days)))
    return (
        trigger.since_last_handled()
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
        & ~AC.any_deps_match(AC.missing()).allow(dg.AssetSelection.assets(features))
    ).with_label("score new features; rescore recent days on promotion")
