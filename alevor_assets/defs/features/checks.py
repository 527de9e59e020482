"""Checks of features, labels and training rows (blocking: a failure stops what follows)."""

from __future__ import annotations

import polars as pl

from alevor_assets.defs.publishing import contract_check_spec
from alevor_assets.lib.modeling import leaked_features
from alevor_assets.lib.schemas import RuleFailure, ValidationReport, validate

FEATURES_CHECKS = [
    contract_check_spec(
        "features",
        "Every new features partition: unique (token, interval, ts), every feature finite or null "
        "(null only during warm-up).",
    )
]
LABELS_CHECKS = [
    contract_check_spec(
        "labels",
        "Every new labels partition: unique keys per label set, finite labels, weight >= 0, and "
        "horizon_end after ts: a label only ever looks forward from its bar.",
    )
]
TRAINING_SET_CHECKS = [
    contract_check_spec(
        "training_set",
        "Every new training_set partition: unique keys per spec, finite labels, positive weights, "
        "and no label leakage: no feature equals the label, or correlates with it almost "
        "perfectly, as a feature computed from the future would.",
    )
]


def validate_features(frame: pl.DataFrame) -> ValidationReport:
    return validate("features", frame, ts_column="ts")


def validate_labels(frame: pl.DataFrame) -> ValidationReport:
    return validate("labels", frame, ts_column="ts")


def validate_training_rows(frame: pl.DataFrame, features: list[str]) -> ValidationReport:
    report = validate("training_set", frame, ts_column="ts")
    leaks = leaked_features(frame, features)
    if leaks:
        report.failures.append(RuleFailure(
            rule="no feature leaks the label (equal to it, or |correlation| >= 0.999)",
            column=", ".join(sorted(leaks)),
            count=len(leaks),
            examples=[{"row": None, "feature": f, "evidence": round(v, 6)} for f, v in sorted(leaks.items())][:5],
        ))
    return report
