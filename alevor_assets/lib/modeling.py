"""From a spec's training rows to a fitted, evaluated model: the chronological split, training
with early stopping on the validation fold, the threshold rule, test-fold metrics (with a
cost-aware backtest for tradable labels, per-event metrics for detectors) and walk-forward folds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from alevor_assets.lib.alerts import raise_alerts
from alevor_assets.lib.backtest import BacktestResult, backtest
from alevor_assets.lib.cores import in_threads, usable_cores
from alevor_assets.lib.detection import DetectionResult, DetectionSetup, as_event_frame, evaluate_detections, label_episodes
from alevor_assets.lib.intervals import interval_timedelta
from alevor_assets.lib.specs import ModelSpec
from alevor_assets.lib.thresholds import ThresholdChoice, choose_threshold
from alevor_assets.lib.training import Trainer
from alevor_assets.lib.training.base import input_frame
from alevor_assets.lib.training_set import row_features
from alevor_assets.lib.validation import (
    Fold,
    InsufficientDataError,
    Split,
    by_time,
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
    threshold_choice: ThresholdChoice | None = None


def _xyw(rows: pl.DataFrame, features: list[str], trainer: Trainer) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    return (
        input_frame(trainer, rows, features),
        rows["label"].to_numpy(),
        rows["weight"].to_numpy().astype(np.float64),
    )


def detection_setup(spec: ModelSpec, events: pl.DataFrame | None, rows: pl.DataFrame) -> DetectionSetup | None:
    """What evaluating the spec as a detector needs, or ``None`` when its label strategy does not
    detect events. Strategies that learn from labelled events are scored against ``events`` (the
    types mapped to the largest class); the others against the runs of positive labels in
    ``rows``."""
    strategy = spec.label.build()
    if not getattr(strategy, "detects_events", False):
        return None
    step = interval_timedelta(spec.interval)
    classes: dict[str, int] = getattr(strategy, "classes", None) or {"pump": 1}
    top = max(classes.values())
    known = as_event_frame(events) if strategy.needs_events else label_episodes(rows, step)
    return DetectionSetup(known, tuple(t for t, v in classes.items() if v == top), step, spec.alerts)


def validation_threshold(
    spec: ModelSpec, trainer: Trainer, rows: pl.DataFrame, features: list[str], setup: DetectionSetup | None
) -> tuple[ThresholdChoice, np.ndarray]:
    """The decision threshold of a fitted classifier by the spec's threshold rule on the
    validation fold ``rows``, with the validation scores (the final fit and every walk-forward
    fold use this). Multiclass scores (one column per class) keep 0.5: their prediction is the
    arg-max."""
    x, y, _ = _xyw(rows, features, trainer)
    score = trainer.predict_score(x)
    if score.ndim != 1:
        return ThresholdChoice(0.5, "argmax"), score
    classes = trainer.fit_info().get("classes")
    positive = max(classes) if classes else 1
    return choose_threshold(spec.threshold, (y == positive).astype(int), score, rows, setup), score


def split_rows(spec: ModelSpec, rows: pl.DataFrame) -> Split:
    return chronological_split(
        by_time(rows), spec.split.train, spec.split.validation, spec.split.embargo_us
    )


def unseen_classes(train_rows: pl.DataFrame, other: pl.DataFrame, what: str) -> None:
    """Every class of ``other`` must occur in ``train_rows``: a classifier cannot learn a class it
    never saw (XGBoost refuses to, and its metrics would mean nothing). Raises
    :class:`InsufficientDataError` naming the classes, the fold and the row counts."""
    seen = set(train_rows["label"].unique().to_list())
    counts = other.group_by("label").len().filter(~pl.col("label").is_in(list(seen))).sort("label")
    if counts.height:
        missing = ", ".join(f"{c} ({n} rows)" for c, n in counts.iter_rows())
        raise InsufficientDataError(
            f"class(es) {missing} occur in the {what} but not in its training rows "
            f"(classes there: {sorted(seen)}); a longer window or more days will bring them into training"
        )


def _check_detector_data(spec: ModelSpec, split: Split, setup: DetectionSetup | None) -> None:
    if setup is None or not spec.label.build().needs_events:
        return
    if not (split.train.rows["label"] > 0).any():
        raise InsufficientDataError(f"spec {spec.name}: no pump row in the training fold; more events are needed")
    found = evaluate_detections(split.test.rows, pl.DataFrame(schema={"token": pl.Utf8, "ts": pl.Datetime("us", "UTC")}), setup)
    if not found.metrics["events"]:
        raise InsufficientDataError(
            f"spec {spec.name}: the test fold ({split.test.height} rows) holds no labelled event that moved the "
            "price; a detector cannot be evaluated without one (more days or events will bring one)"
        )


def train(spec: ModelSpec, rows: pl.DataFrame, trainer: Trainer, events: pl.DataFrame | None = None) -> TrainResult:
    """Fit ``trainer`` on the spec's chronological training fold, early-stopping on validation,
    and choose its threshold by the spec's rule (``events``: the labelled events of the span, for
    detectors)."""
    features = row_features(rows)
    split = split_rows(spec, rows)
    for fold in (split.train, split.validation, split.test):
        if fold.height == 0:
            raise InsufficientDataError(f"spec {spec.name}: the {fold.name} fold is empty after purging; more days will fill it")
    setup = detection_setup(spec, events, rows)
    if trainer.task == "classification":
        for fold in (split.validation, split.test):
            try:
                unseen_classes(split.train.rows, fold.rows, f"{fold.name} fold")
            except InsufficientDataError as exc:
                raise InsufficientDataError(f"spec {spec.name}: {exc}") from None
        _check_detector_data(spec, split, setup)
    xt, yt, wt = _xyw(split.train.rows, features, trainer)
    xv, yv, wv = _xyw(split.validation.rows, features, trainer)
    trainer.fit(xt, yt, wt, xv, yv, wv)
    if trainer.task == "classification":
        choice, score = validation_threshold(spec, trainer, split.validation.rows, features, setup)
        val = classification_metrics(yv, score, choice.value, classes=trainer.fit_info().get("classes"))
        return TrainResult(trainer, split, features, choice.value, val, score, choice)
    score = trainer.predict_score(xv)
    return TrainResult(trainer, split, features, None, regression_metrics(yv, score), score)


# Label strategies whose rows are trades, and whether their realized_return already includes costs.
TRADABLE_STRATEGIES = {
    "forward_return": False, "direction": False, "triple_barrier": False, "triple_barrier_meta": False, "edge": True,
}


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    score: np.ndarray
    backtest: BacktestResult | None
    detection: DetectionResult | None = None


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


def detect(rows: pl.DataFrame, score: np.ndarray, threshold: float, setup: DetectionSetup) -> DetectionResult:
    """Alerts of a binary detector's scores on ``rows`` (each known when its bar closes), and
    their per-event metrics."""
    scored = rows.select("token", (pl.col("ts") + setup.step).alias("ts"), pl.Series("score", score, dtype=pl.Float64))
    return evaluate_detections(rows, raise_alerts(scored, threshold, setup.rules.cooldown), setup)


def evaluate(
    spec: ModelSpec,
    trainer: Trainer,
    rows: pl.DataFrame,
    features: list[str],
    threshold: float | None,
    classes: list[int] | None = None,
    setup: DetectionSetup | None = None,
) -> Evaluation:
    """Test-fold metrics of a fitted model: by task, plus trading metrics for tradable labels and
    per-event metrics for binary detectors (given their ``setup``)."""
    x, y, _ = _xyw(rows, features, trainer)
    score = trainer.predict_score(x)
    thr = threshold if threshold is not None else 0.5
    detection = None
    if trainer.task == "classification":
        metrics = classification_metrics(y, score, thr, classes=classes)
        if setup is not None and score.ndim == 1:
            detection = detect(rows, score, thr, setup)
            metrics.update(detection.metrics)
    else:
        metrics = regression_metrics(y, score)
    trade, result = trading_metrics(spec, rows, trainer.task, score, thr, classes)
    metrics.update(trade)
    return Evaluation(metrics, score, result, detection)


def walk_forward(
    spec: ModelSpec,
    rows: pl.DataFrame,
    features: list[str],
    make_trainer_fn: Callable[[], Trainer],
    setup: DetectionSetup | None = None,
) -> dict[str, Any]:
    """Expanding-window walk-forward: retrain on everything before each test fold (purged, with
    the spec's embargo), early-stop on the last 15% of that, choose the threshold there by the
    spec's rule, score the fold (per event for detectors, given their ``setup``). A fold that
    cannot be trained (too few rows, a class its training rows lack) is skipped with the reason."""
    if spec.walk_forward_folds == 0:
        return {"folds": [], "skipped": "walk_forward_folds is 0"}
    try:
        folds = walk_forward_folds(by_time(rows), spec.walk_forward_folds, spec.split.embargo_us)
    except ValueError as exc:
        return {"folds": [], "skipped": str(exc)}

    def run(fold: Fold) -> dict[str, Any]:
        return _walk_forward_fold(spec, fold, features, make_trainer_fn, setup)

    # Two folds at a time when the trainer allows it: on these sizes XGBoost's own threads keep
    # 1.6 of two cores busy (the pump detector's folds: 13 s instead of 16-17 s two at a time),
    # and each fit is the same, with the same n_jobs, whatever runs beside it.
    results = in_threads(run, folds, 2 if usable_cores() > 1 and make_trainer_fn().independent_fits else 1)
    values = [r.get(spec.primary_metric) for r in results if r.get(spec.primary_metric) is not None]
    thresholds = [r["threshold"] for r in results if r.get("threshold") is not None]
    return {
        "folds": results,
        "primary_metric": spec.primary_metric,
        "mean": float(np.mean(values)) if values else None,
        "std": float(np.std(values)) if len(values) > 1 else None,
        "threshold_min": min(thresholds) if thresholds else None,
        "threshold_max": max(thresholds) if thresholds else None,
    }


def _walk_forward_fold(spec: ModelSpec, fold: Fold, features: list[str], make_trainer_fn: Callable[[], Trainer],
                      setup: DetectionSetup | None) -> dict[str, Any]:
    """One walk-forward fold: train on its training rows (early-stopped on their last 15%), score its test rows."""
    span = {"fold": fold.index, "test_start_us": fold.test_start_us, "test_end_us": fold.test_end_us}
    ts = fold.train["ts"].dt.epoch("us").sort().to_numpy()
    if len(ts) < 20:
        return {**span, "skipped": "too few training rows"}
    cut = int(ts[int(len(ts) * 0.85)])
    inner_train = purge(fold.train.filter(pl.col("ts").dt.epoch("us") < cut), cut)
    inner_val = fold.train.filter(pl.col("ts").dt.epoch("us") >= cut)
    trainer = make_trainer_fn()
    try:
        if trainer.task == "classification":
            unseen_classes(inner_train, pl.concat([inner_val.select("label"), fold.test.select("label")]),
                           "fold's validation or test rows")
        xt, yt, wt = _xyw(inner_train, features, trainer)
        xv, yv, wv = _xyw(inner_val, features, trainer)
        trainer.fit(xt, yt, wt, xv, yv, wv)
    except ValueError as exc:
        return {**span, "skipped": str(exc)}
    choice = validation_threshold(spec, trainer, inner_val, features, setup)[0] if trainer.task == "classification" else None
    ev = evaluate(spec, trainer, fold.test, features, choice.value if choice else None,
                  trainer.fit_info().get("classes"), setup)
    keep = {k: v for k, v in ev.metrics.items() if isinstance(v, (int, float)) or v is None}
    return {
        **span, "train_rows": inner_train.height, "test_rows": fold.test.height, "purged_rows": fold.purged_rows,
        "embargoed_rows": fold.embargoed_rows, **keep,
        **({"threshold_rule": choice.rule} if choice else {}),
        **({"event_table": ev.detection.events} if ev.detection is not None else {}),
    }
