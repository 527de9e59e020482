"""Checks of the features asset (blocking: a failure stops what follows). The rules themselves are
in ``lib/contract.py``."""

from __future__ import annotations

from alevor_assets.defs.publishing import contract_check_spec

FEATURES_CHECKS = [
    contract_check_spec(
        "features",
        "Every new features partition: unique (token, interval, ts), every feature finite or null "
        "(null only during warm-up).",
    )
]
