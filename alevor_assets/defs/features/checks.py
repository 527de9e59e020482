"""Checks of features, labels and training rows (blocking: a failure stops what follows).

The rules themselves are in ``lib/contract.py``."""

from __future__ import annotations

from alevor_assets.defs.publishing import contract_check_spec

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
