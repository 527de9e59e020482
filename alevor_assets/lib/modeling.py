"""From labelled feature rows to a trained, validated model: the plain functions behind the
``training_set``, ``model_<spec>`` and ``validation_<spec>`` assets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from alevor_assets.lib import report as rp
from alevor_assets.lib.features import KEYS, feature_names
from alevor_assets.lib.specs import ModelSpec
from alevor_assets.lib.training import Trainer
from alevor_assets.lib.validation import (
    Split,
    best_f1_threshold,
    chronological_split,
    classification_metrics,
    evaluate_gate,
    regression_metrics,
)

TARGET_COLUMNS = ["label", "weight", "horizon_end"]


def spec_features(spec: ModelSpec, available: list[str] | None = None) -> list[str]:
    """The feature columns a spec trains on, in a stable order."""
    names = list(available) if available is not None else feature_names()
    chosen = list(spec.features_include) if spec.features_include is not None else names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise ValueError(f"spec {spec.name}: unknown features {unknown}")
    return [n for n in chosen if n not in set(spec.features_exclude)]


def build_training_rows(spec: ModelSpec, features: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Join a spec's features and labels on (token, interval, ts) and apply its filters.

    Only rows with both a feature snapshot and a label make it; rows without a label yet (horizon
    not covered) wait for a later run.
    """
    cols = spec_features(spec, [c for c in features.columns if c not in KEYS])
    needed = cols + (["token_age_hours"] if spec.max_token_age_hours is not None and "token_age_hours" not in cols else [])
    joined = features.select(*KEYS, *needed).join(
        labels.select(*KEYS, *TARGET_COLUMNS), on=KEYS, how="inner"
    )
    if spec.max_token_age_hours is not None:
        joined = joined.filter(pl.col("token_age_hours") <= spec.max_token_age_hours)
    return joined.select(
        *KEYS, pl.lit(spec.name).alias("spec"), *cols, *TARGET_COLUMNS
    ).sort("token", "ts")


@dataclass
class TrainResult:
    trainer: Trainer
    split: Split
    features: list[str]
    threshold: float | None
    validation_metrics: dict[str, Any]


def _xyw(rows: pl.DataFrame, features: list[str]) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    return (
        rows.select([pl.col(f).cast(pl.Float64) for f in features]),
        rows["label"].to_numpy(),
        rows["weight"].to_numpy().astype(np.float64),
    )


def split_rows(spec: ModelSpec, rows: pl.DataFrame) -> Split:
    return chronological_split(
        rows.sort("ts", "token"), spec.split.train, spec.split.validation, spec.split.embargo_us
    )


def train(spec: ModelSpec, rows: pl.DataFrame, trainer: Trainer) -> TrainResult:
    """Fit ``trainer`` on the spec's chronological training fold, early-stopping on validation."""
    features = [c for c in rows.columns if c not in (*KEYS, "spec", *TARGET_COLUMNS)]
    split = split_rows(spec, rows)
    for fold in (split.train, split.validation, split.test):
        if fold.height == 0:
            raise ValueError(f"spec {spec.name}: the {fold.name} fold is empty after purging; widen the window")
    xt, yt, wt = _xyw(split.train.rows, features)
    xv, yv, wv = _xyw(split.validation.rows, features)
    trainer.fit(xt, yt, wt, xv, yv, wv)
    threshold = None
    if trainer.task == "classification":
        score = trainer.predict_score(xv)
        threshold = best_f1_threshold((yv > 0).astype(int), score) if score.ndim == 1 else 0.5
        val = classification_metrics(yv, score, threshold)
    else:
        val = regression_metrics(yv, trainer.predict_score(xv))
    return TrainResult(trainer, split, features, threshold, val)


def evaluate(trainer: Trainer, rows: pl.DataFrame, features: list[str], threshold: float | None) -> tuple[dict[str, Any], np.ndarray]:
    """Test-fold metrics of a fitted model, and its scores."""
    x, y, _ = _xyw(rows, features)
    score = trainer.predict_score(x)
    if trainer.task == "classification":
        ts_us = rows["ts"].dt.epoch("us").to_numpy()
        token = rows["token"].to_numpy()
        return classification_metrics(y, score, threshold if threshold is not None else 0.5, token=token, ts_us=ts_us), score
    return regression_metrics(y, score), score


def validation_report(
    spec: ModelSpec,
    version: int,
    metrics: dict[str, Any],
    gate_rules: dict[str, float],
    decision: str,
    importance: dict[str, float],
    test_rows: pl.DataFrame,
    score: np.ndarray,
    training: dict[str, Any],
) -> rp.Report:
    report = rp.Report(title=f"Validation of {spec.name} v{version}")
    report.add("Decision", decision)
    scalar = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) or v is None}
    report.add("Test metrics (held-out, chronologically last fold)", rp.table(
        [{"metric": k, "value": v} for k, v in scalar.items()], ["metric", "value"]
    ))
    gate = evaluate_gate(metrics, gate_rules)
    report.add("Gate", rp.table(gate.checks, ["rule", "value", "passed"]) if gate.checks else "No gate rules.")
    report.add("Data", rp.table(
        [{"fold": k, **v} for k, v in training["split"].items() if isinstance(v, dict)],
        ["fold", "start_us", "end_us", "rows"],
    ) + f"\n\nPurged rows: {training['split']['purged_rows']}, embargoed rows: "
        f"{training['split']['embargoed_rows']}. Partitions: {', '.join(training['partitions'])}.")
    top = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:15]
    report.add("Top features", rp.table([{"feature": k, "gain share": v} for k, v in top], ["feature", "gain share"]))
    if importance:
        report.plots["feature_importance.png"] = rp.feature_importance_plot(importance)
    y = test_rows["label"].to_numpy()
    if spec.task == "classification" and score.ndim == 1 and len(np.unique(y > 0)) > 1:
        report.plots["calibration.png"] = rp.calibration_plot((y > 0).astype(int), score)
    if spec.task == "classification" and "confusion_matrix" in metrics:
        m = metrics["confusion_matrix"]
        report.plots["confusion_matrix.png"] = rp.confusion_plot(m, [str(i) for i in range(len(m))])
    if spec.task == "regression" and len(y):
        report.plots["predicted_vs_actual.png"] = rp.scatter_plot(y, score)
    return report
