"""Scoring: a spec's predictions from features, by its promoted model or its declared fallback.

The ``predictions_<spec>`` assets and the public :func:`score` both go through
:func:`predictions`, so a notebook, a service and the pipeline score every row the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from alevor_assets.lib.catalog import Catalog
from alevor_assets.lib.drift import psi_against, psi_against_references
from alevor_assets.lib.features import FeatureConfig, compute_features
from alevor_assets.lib.registry import ArtifactIntegrityError, ModelRegistry
from alevor_assets.lib.specs import ModelSpec, model_specs
from alevor_assets.lib.training import Trainer
from alevor_assets.lib.training.base import input_frame

MODEL, FALLBACK = "model", "fallback"
PREDICTION_SCHEMA: dict[str, pl.DataType] = {
    "token": pl.String(), "interval": pl.String(), "ts": pl.Datetime("us", "UTC"), "spec": pl.String(),
    "score": pl.Float64(), "predicted": pl.Int64(), "version": pl.Int64(), "source": pl.String(), "reason": pl.String(),
}


@dataclass(frozen=True)
class ServingModel:
    """A loaded, integrity-checked model version and what scoring needs from its metadata."""

    spec: str
    version: int
    trainer: Trainer
    features: list[str]
    threshold: float | None
    classes: list[int] | None
    sha256: str
    reference: dict[str, Any] | None = None  # distributions at training time (lib/model_report.reference)

    @property
    def task(self) -> str:
        return self.trainer.task


def load_serving_model(registry: ModelRegistry, spec: str, version: int | None = None) -> ServingModel:
    """Version ``version`` of ``spec`` (default: the promoted one), after the registry's sha256
    check; raises ``LookupError`` (no such version) or ``ArtifactIntegrityError`` (tampered)."""
    trainer, mv = registry.load(spec, version)
    meta = mv.metadata
    return ServingModel(spec, mv.version, trainer, list(meta["features"]), meta.get("threshold"),
                        (meta.get("fit") or {}).get("classes"), mv.sha256, meta.get("reference"))


def _frame(features: pl.DataFrame, spec: ModelSpec, score: pl.Series, predicted: pl.Series,
           version: int | None, source: str, reason: str | None) -> pl.DataFrame:
    if features.height == 0:
        return pl.DataFrame(schema=PREDICTION_SCHEMA)
    return features.select(
        pl.col("token").cast(pl.String), pl.col("interval").cast(pl.String), pl.col("ts"),
        pl.lit(spec.name, pl.String).alias("spec"),
        score.cast(pl.Float64).alias("score"),
        predicted.cast(pl.Int64).alias("predicted"),
        pl.lit(version, pl.Int64).alias("version"),
        pl.lit(source, pl.String).alias("source"),
        pl.lit(reason, pl.String).alias("reason"),
    )


def model_predictions(spec: ModelSpec, features: pl.DataFrame, model: ServingModel) -> pl.DataFrame:
    """Score every feature row with ``model``: the positive-class probability and the decision at
    the model's threshold (binary), the most likely class and its probability (multi-class), or
    the predicted value (regression)."""
    x = input_frame(model.trainer, features, model.features)
    raw = np.asarray(model.trainer.predict_score(x)) if features.height else np.zeros(0)
    if model.task == "regression":
        score, predicted = pl.Series(raw, dtype=pl.Float64), pl.Series([None] * len(raw), dtype=pl.Int64)
    elif raw.ndim == 2:
        labels = np.asarray(model.classes if model.classes is not None else range(raw.shape[1]))
        score, predicted = pl.Series(raw.max(axis=1)), pl.Series(labels[raw.argmax(axis=1)].astype(np.int64))
    else:
        threshold = model.threshold if model.threshold is not None else 0.5
        positive = max(model.classes) if model.classes else 1
        negative = min(model.classes) if model.classes else 0
        score, predicted = pl.Series(raw), pl.Series(np.where(raw >= threshold, positive, negative).astype(np.int64))
    return _frame(features, spec, score, predicted, model.version, MODEL, None)


def fallback_predictions(spec: ModelSpec, features: pl.DataFrame, reason: str) -> pl.DataFrame:
    """The spec's declared fallback for every row, marked with ``reason``."""
    rule = spec.fallback_rule()
    missing = [c for c in (rule.needs() if rule else []) if c not in features.columns]
    if rule is None or missing:
        why = reason if rule is None else f"{reason}; fallback {rule.name} needs missing feature(s) {missing}"
        nulls = pl.Series([None] * features.height, dtype=pl.Float64)
        return _frame(features, spec, nulls, nulls.cast(pl.Int64), None, FALLBACK, why)
    score = rule.score(features)
    predicted = (score >= 0.5).cast(pl.Int64) if spec.task == "classification" else pl.Series([None] * features.height, dtype=pl.Int64)
    return _frame(features, spec, score, predicted, None, FALLBACK, reason)


def predictions(spec: ModelSpec, features: pl.DataFrame, load: Any) -> pl.DataFrame:
    """Predictions of ``features`` by the model ``load()`` returns, or by the spec's fallback when
    it returns nothing, fails its integrity check, or needs features that are not there. Never a
    mix within one call: either every row is the model's or every row the fallback's."""
    try:
        model = load()
    except LookupError as exc:
        return fallback_predictions(spec, features, f"no model to serve: {exc}")
    except ArtifactIntegrityError as exc:
        return fallback_predictions(spec, features, f"the model failed its integrity check: {exc}")
    missing = [f for f in model.features if f not in features.columns]
    if missing:
        return fallback_predictions(spec, features, f"v{model.version} needs feature(s) missing here: {missing[:10]}")
    return model_predictions(spec, features, model)


def score(
    spec: ModelSpec | str,
    bars: pl.DataFrame,
    model: ServingModel | None = None,
    *,
    trades: pl.DataFrame | None = None,
    tokens: pl.DataFrame | None = None,
    config: FeatureConfig | None = None,
    home: str | os.PathLike[str] | None = None,
) -> pl.DataFrame:
    """Score bars as the pipeline does: the spec's features from ``bars`` (its interval and the
    coarser multi-timeframe intervals; ``trades`` for the rush and La Morgia features, ``tokens``
    for token age), then the promoted model of ``$ALEVOR_HOME`` (or ``home``), or ``model`` when
    given. Give enough history before the bars you care about for the features' warm-up; every
    feature row gets a prediction, so filter to the span you need. Returns the columns of the
    ``predictions_<spec>`` assets."""
    spec = _spec(spec)
    feats = compute_features(bars, spec.interval, tokens=tokens, trades=trades, config=config)
    if model is not None:
        return predictions(spec, feats, lambda: model)
    root = Path(home or os.environ.get("ALEVOR_HOME", "./.alevor")).expanduser().resolve()
    registry = ModelRegistry(root / "models", Catalog(root / "alevor.duckdb"))
    return predictions(spec, feats, lambda: load_serving_model(registry, spec.name))


def _spec(spec: ModelSpec | str) -> ModelSpec:
    if isinstance(spec, ModelSpec):
        return spec
    by_name = {s.name: s for s in model_specs()}
    if spec not in by_name:
        raise ValueError(f"unknown spec {spec!r}; served: {sorted(by_name)}")
    return by_name[spec]


def live_drift(model: ServingModel, features: pl.DataFrame, scored: pl.DataFrame) -> dict[str, Any]:
    """PSI of live features and scores against the model's training-time distributions."""
    ref = model.reference or {}
    feature_psi = psi_against_references(ref.get("features") or {}, features)
    score_ref = ref.get("score")
    score_psi = psi_against(score_ref, scored["score"].cast(pl.Float64).to_numpy()) if score_ref and scored.height else None
    top = dict(sorted(feature_psi.items(), key=lambda kv: kv[1], reverse=True)[:10])
    return {"score_psi": score_psi, "max_feature_psi": max(feature_psi.values(), default=None), "top_feature_psi": top}


def score_summary(frame: pl.DataFrame) -> dict[str, Any]:
    """The distribution of a predictions frame's scores (what each partition records)."""
    s = frame["score"].drop_nulls()
    fallback_rows = int((frame["source"] == FALLBACK).sum())
    if s.len() == 0:
        return {"rows": frame.height, "scored": 0, "fallback_rows": fallback_rows}
    predicted = frame["predicted"].drop_nulls()
    return {
        "rows": frame.height, "scored": s.len(), "mean": float(s.mean()), "p50": float(s.quantile(0.5)),
        "p90": float(s.quantile(0.9)), "p99": float(s.quantile(0.99)), "max": float(s.max()),
        "positive_share": float((predicted == 1).mean()) if predicted.len() else None,
        "fallback_rows": fallback_rows,
    }


__all__ = ["ServingModel", "fallback_predictions", "load_serving_model", "model_predictions", "predictions", "score"]
