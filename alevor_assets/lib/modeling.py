"""From a spec's training rows to a fitted, evaluated model: the chronological split, training
with early stopping on the validation fold, test-fold metrics (with a cost-aware backtest for
tradable labels) and walk-forward folds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from alevor_assets.lib.backtest import BacktestResult, backtest
from alevor_assets.lib.specs import ModelSpec
from alevor_assets.lib.training import Trainer
from alevor_assets.lib.training_set import row_features
from alevor_assets.lib.validation import (
    InsufficientDataError,
    Split,
    best_f1_threshold,
    chronological_split,
    classification_metrics,
    purge,
    regression_metrics,
    walk_forward_folds,
)


@dataclass
class TrainResult:
    trainer: Trainer
    split: Split
    features: list[str]
    threshold: float | None
    validation_metrics: dict[str, Any]
    # The model's scores on the validation fold: the reference live scores are compared with.
    validation_scores: np.ndarray | None = None


def _xyw(rows: pl.DataFrame, features: list[str]) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    return (
        rows.select([pl.col(f).cast(pl.Float64) for f in features]),
        rows["label"].to_numpy(),
        rows["weight"].to_numpy().astype(np.float64),
    )


def validation_threshold(trainer: Trainer, xv: pl.DataFrame, yv: np.ndarray) -> tuple[float, np.ndarray]:
    """The decision threshold of a fitted classifier, chosen for the best F1 of its positive class
    (the largest label) on the validation fold, with the validation scores. Multiclass scores
    (one column per class) keep 0.5: their prediction is the arg-max."""
    score = trainer.predict_score(xv)
    classes = trainer.fit_info().get("classes")
    positive = max(classes) if classes else 1
    threshold = best_f1_threshold((yv == positive).astype(int), score) if score.ndim == 1 else 0.5
    return threshold, score


def split_rows(spec: ModelSpec, rows: pl.DataFrame) -> Split:
    return chronological_split(
        rows.sort("ts", "token"), spec.split.train, spec.split.validation, spec.split.embargo_us
    )


def train(spec: ModelSpec, rows: pl.DataFrame, trainer: Trainer) -> TrainResult:
    """Fit ``trainer`` on the spec's chronological training fold, early-stopping on validation."""
    features = row_features(rows)
    split = split_rows(spec, rows)
    for fold in (split.train, split.validation, split.test):
        if fold.height == 0:
            raise InsufficientDataError(f"spec {spec.name}: the {fold.name} fold is empty after purging; more days will fill it")
    xt, yt, wt = _xyw(split.train.rows, features)
    xv, yv, wv = _xyw(split.validation.rows, features)
    trainer.fit(xt, yt, wt, xv, yv, wv)
    threshold = None
    if trainer.task == "classification":
        threshold, score = validation_threshold(trainer, xv, yv)
        val = classification_metrics(yv, score, threshold, classes=trainer.fit_info().get("classes"))
    else:
        score = trainer.predict_score(xv)
        val = regression_metrics(yv, score)
    return TrainResult(trainer, split, features, threshold, val, score)


# Label strategies whose rows are trades, and whether their realized_return already includes costs.
TRADABLE_STRATEGIES = {
    "forward_return": False, "direction": False, "triple_barrier": False, "triple_barrier_meta": False, "edge": True,
}


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    score: np.ndarray
    backtest: BacktestResult | None


def positions(spec: ModelSpec, task: str, score: np.ndarray, threshold: float, classes: list[int] | None) -> np.ndarray:
    """Trade signals (-1, 0, +1) from model scores, per the spec's backtest sides."""
    long_short = spec.backtest.sides == "long_short"
    if task == "regression":
        pos = np.sign(score)
        return pos if long_short else np.maximum(pos, 0)
    if score.ndim == 1:
        pos = np.where(score >= threshold, 1, 0)
        return np.where(long_short & (score <= 1 - threshold), -1, pos)
    labels = list(classes or range(score.shape[1]))
    up = score[:, labels.index(1)] if 1 in labels else np.zeros(len(score))
    down = score[:, labels.index(-1)] if -1 in labels else np.zeros(len(score))
    pos = np.where((up >= threshold) & (up >= down), 1, 0)
    return np.where(long_short & (down >= threshold) & (down > up), -1, pos)


def trading_metrics(
    spec: ModelSpec, rows: pl.DataFrame, task: str, score: np.ndarray, threshold: float, classes: list[int] | None
) -> tuple[dict[str, Any], BacktestResult | None]:
    """Cost-aware backtest of the model's signals on ``rows`` (tradable strategies only)."""
    net = TRADABLE_STRATEGIES.get(spec.label.strategy)
    if net is None or "realized_return" not in rows.columns:
        return {}, None
    realized = rows["realized_return"].fill_null(0.0).to_numpy()
    pos = positions(spec, task, score, spec.backtest.threshold if spec.backtest.threshold is not None else threshold, classes)
    result = backtest(
        rows["token"].to_numpy(), rows["ts"].dt.epoch("us").to_numpy(), rows["horizon_end"].dt.epoch("us").to_numpy(),
        pos, realized, fee_bps=spec.backtest.fee_bps, slippage_bps=spec.backtest.slippage_bps,
        risk_fraction=spec.backtest.risk_fraction, returns_are_net=net,
    )
    out = dict(result.metrics)
    traded = (pos != 0) & (realized != 0)
    if task == "classification" and not net:
        # Did the side we took match where the price went?
        out["directional_accuracy"] = float(np.mean(np.sign(pos[traded]) == np.sign(realized[traded]))) if traded.any() else None
    return out, result


def evaluate(
    spec: ModelSpec,
    trainer: Trainer,
    rows: pl.DataFrame,
    features: list[str],
    threshold: float | None,
    classes: list[int] | None = None,
) -> Evaluation:
    """Test-fold metrics of a fitted model: by task, plus trading metrics for tradable labels."""
    x, y, _ = _xyw(rows, features)
    score = trainer.predict_score(x)
    thr = threshold if threshold is not None else 0.5
    if trainer.task == "classification":
        episodes = getattr(spec.label.build(), "detects_events", False)
        metrics = classification_metrics(
            y, score, thr, classes=classes,
            token=rows["token"].to_numpy() if episodes else None,
            ts_us=rows["ts"].dt.epoch("us").to_numpy() if episodes else None,
        )
    else:
        metrics = regression_metrics(y, score)
    trade, result = trading_metrics(spec, rows, trainer.task, score, thr, classes)
    metrics.update(trade)
    return Evaluation(metrics, score, result)


def walk_forward(
    spec: ModelSpec, rows: pl.DataFrame, features: list[str], make_trainer_fn: Callable[[], Trainer]
) -> dict[str, Any]:
    """Expanding-window walk-forward: retrain on everything before each test fold (purged, with
    the spec's embargo), early-stop on the last 15% of that, score the fold."""
    if spec.walk_forward_folds == 0:
        return {"folds": [], "skipped": "walk_forward_folds is 0"}
    try:
        folds = walk_forward_folds(rows.sort("ts", "token"), spec.walk_forward_folds, spec.split.embargo_us)
    except ValueError as exc:
        return {"folds": [], "skipped": str(exc)}
    results = []
    for fold in folds:
        ts = fold.train["ts"].dt.epoch("us").sort().to_numpy()
        if len(ts) < 20:
            results.append({"fold": fold.index, "skipped": "too few training rows"})
            continue
        cut = int(ts[int(len(ts) * 0.85)])
        inner_train = purge(fold.train.filter(pl.col("ts").dt.epoch("us") < cut), cut)
        inner_val = fold.train.filter(pl.col("ts").dt.epoch("us") >= cut)
        trainer = make_trainer_fn()
        try:
            xt, yt, wt = _xyw(inner_train, features)
            xv, yv, wv = _xyw(inner_val, features)
            trainer.fit(xt, yt, wt, xv, yv, wv)
        except ValueError as exc:
            results.append({"fold": fold.index, "skipped": str(exc)})
            continue
        threshold = validation_threshold(trainer, xv, yv)[0] if trainer.task == "classification" else None
        ev = evaluate(spec, trainer, fold.test, features, threshold, trainer.fit_info().get("classes"))
        keep = {k: v for k, v in ev.metrics.items() if isinstance(v, (int, float)) or v is None}
        results.append({
            "fold": fold.index, "test_start_us": fold.test_start_us, "test_end_us": fold.test_end_us,
            "train_rows": inner_train.height, "test_rows": fold.test.height, "purged_rows": fold.purged_rows,
            "embargoed_rows": fold.embargoed_rows, **keep,
        })
    values = [r.get(spec.primary_metric) for r in results if r.get(spec.primary_metric) is not None]
    return {
        "folds": results,
        "primary_metric": spec.primary_metric,
        "mean": float(np.mean(values)) if values else None,
        "std": float(np.std(values)) if len(values) > 1 else None,
    }
