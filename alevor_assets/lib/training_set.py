"""A spec's training rows: its features joined with its labels, after its filters."""

from __future__ import annotations

import polars as pl

from alevor_assets.lib.features import KEYS, feature_names
from alevor_assets.lib.schemas import DATE_COLUMN
from alevor_assets.lib.specs import ModelSpec

TARGET_COLUMNS = ["label", "weight", "horizon_end"]
OPTIONAL_TARGETS = ["realized_return"]


def spec_features(spec: ModelSpec, available: list[str] | None = None) -> list[str]:
    """The feature columns a spec trains on, in a stable order."""
    names = list(available) if available is not None else feature_names()
    chosen = list(spec.features_include) if spec.features_include is not None else names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise ValueError(f"spec {spec.name}: unknown features {unknown}")
    return [n for n in chosen if n not in set(spec.features_exclude)]


def population(spec: ModelSpec) -> pl.Expr | None:
    """The rows a spec is for, by its filters (``None``: every row): what it trains on, and what
    its live drift is measured on."""
    if spec.max_token_age_hours is None:
        return None
    return (pl.col("token_age_hours") <= spec.max_token_age_hours).fill_null(False)


def build_training_rows(spec: ModelSpec, features: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Join a spec's features and labels on (token, interval, ts) and apply its filters.

    Only rows with both a feature snapshot and a label make it; rows without a label yet (horizon
    not covered) wait for a later run.
    """
    cols = spec_features(spec, [c for c in features.columns if c not in KEYS])
    needed = cols + (["token_age_hours"] if spec.max_token_age_hours is not None and "token_age_hours" not in cols else [])
    targets = TARGET_COLUMNS + [c for c in OPTIONAL_TARGETS if c in labels.columns]
    joined = features.select(*KEYS, *needed).join(labels.select(*KEYS, *targets), on=KEYS, how="inner")
    if (keep := population(spec)) is not None:
        joined = joined.filter(keep)
    return joined.select(*KEYS, pl.lit(spec.name).alias("spec"), *cols, *targets).sort("token", "ts")


def row_features(rows: pl.DataFrame) -> list[str]:
    """The feature columns of training rows (everything but keys, spec, targets and the date)."""
    return [c for c in rows.columns if c not in (*KEYS, "spec", *TARGET_COLUMNS, *OPTIONAL_TARGETS, DATE_COLUMN)]
