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
from alevor_assets.lib.backtest import BacktestResult, backtest
from alevor_assets.lib.validation import (
    InsufficientDataError,
    Split,
    best_f1_threshold,
    chronological_split,
    classification_metrics,
    evaluate_gate,
    purge,
    regression_metrics,
    walk_forward_folds,
)

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


def build_training_rows(spec: ModelSpec, features: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Join a spec's features and labels on (token, interval, ts) and apply its filters.

    Only rows with both a feature snapshot and a label make it; rows without a label yet (horizon
    not covered) wait for a later run.
    """
    cols = spec_features(spec, [c for c in features.columns if c not in KEYS])
    needed = cols + (["token_age_hours"] if spec.max_token_age_hours is not None and "token_age_hours" not in cols else [])
    targets = TARGET_COLUMNS + [c for c in OPTIONAL_TARGETS if c in labels.columns]
    joined = features.select(*KEYS, *needed).join(labels.select(*KEYS, *targets), on=KEYS, how="inner")
    if spec.max_token_age_hours is not None:
        joined = joined.filter(pl.col("token_age_hours") <= spec.max_token_age_hours)
    return joined.select(*KEYS, pl.lit(spec.name).alias("spec"), *cols, *targets).sort("token", "ts")


def leaked_features(rows: pl.DataFrame, features: list[str], tolerance: float = 0.999) -> dict[str, float]:
    """Features that give the label away: equal to it within every label class (for discrete
    labels), or (almost) perfectly correlated with it. A feature built from the future looks like
    this; an honest one does not. Returns feature -> the evidence (worst per-class share equal, or
    |correlation|). Days whose label does not vary cannot show leakage and return nothing."""
    if rows.height < 10 or not features or rows["label"].n_unique() < 2:
        return {}
    label = pl.col("label").cast(pl.Float64)
    values = rows["label"].cast(pl.Float64).unique().to_list()
    discrete = len(values) <= 20
    exprs = [pl.corr(pl.col(f), label).alias(f"{f}__r") for f in features]
    if discrete:
        for f in features:
            for i, v in enumerate(values):
                exprs.append(((pl.col(f) == v).filter(label == v).mean()).alias(f"{f}__eq{i}"))
    stats = rows.select(exprs).row(0, named=True)
    out = {}
    for f in features:
        if discrete:
            shares = [stats[f"{f}__eq{i}"] for i in range(len(values))]
            if all(s is not None and s >= tolerance for s in shares):
                out[f] = float(min(shares))
                continue
        r = stats[f"{f}__r"]
        if r is not None and np.isfinite(r) and abs(r) >= tolerance:
            out[f] = float(abs(r))
    return out


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
    features = [c for c in rows.columns if c not in (*KEYS, "spec", *TARGET_COLUMNS, *OPTIONAL_TARGETS)]
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
        val = regression_metrics(yv, trainer.predict_score(xv))
    return TrainResult(trainer, split, features, threshold, val)


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


def walk_forward(spec: ModelSpec, rows: pl.DataFrame, features: list[str], make_trainer_fn) -> dict[str, Any]:
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


def _when(us: Any) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(int(us) / 1e6, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if us is not None else "–"


def validation_report(
    spec: ModelSpec,
    version: int,
    evaluation: Evaluation,
    decision: str,
    importance: dict[str, float],
    test_rows: pl.DataFrame,
    training: dict[str, Any],
    walk: dict[str, Any],
) -> rp.Report:
    metrics, score = evaluation.metrics, evaluation.score
    report = rp.Report(title=f"Validation of {spec.name} v{version}")
    report.add("Decision", decision)
    scalar = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) or v is None}
    report.add("Test metrics (held-out, chronologically last fold)", rp.table(
        [{"metric": k, "value": v} for k, v in scalar.items()], ["metric", "value"]
    ))
    gate = evaluate_gate(metrics, spec.gate)
    report.add("Gate", rp.table(gate.checks, ["rule", "value", "passed"]) if gate.checks else "No gate rules.")
    if evaluation.backtest is not None:
        bt = spec.backtest
        report.add("Backtest", (
            f"Signals on the test fold traded per token without overlap, each trade from its bar to its label's "
            f"horizon, {bt.fee_bps:g} bps fees + {bt.slippage_bps:g} bps slippage per side, {bt.risk_fraction:.0%} of "
            f"equity per trade, sides {bt.sides}. Metrics above: trades, hit_rate, profit_factor, max_drawdown, "
            "sharpe (daily, annualized), total_return."
        ))
        if len(evaluation.backtest.equity):
            report.plots["equity_curve.png"] = rp.equity_plot(evaluation.backtest.equity_ts_us, evaluation.backtest.equity)
    if walk.get("folds"):
        cols = ["fold", "test_start", "test_end", "train_rows", "test_rows", "purged_rows", spec.primary_metric]
        rows = [{**f, "test_start": _when(f.get("test_start_us")), "test_end": _when(f.get("test_end_us"))} for f in walk["folds"]]
        report.add("Walk-forward (expanding window, purged, embargoed)", rp.table(rows, cols) + (
            f"\n\n{spec.primary_metric}: mean {rp._fmt(walk.get('mean'))}, std {rp._fmt(walk.get('std'))}."
        ))
    elif walk.get("skipped"):
        report.add("Walk-forward", f"Skipped: {walk['skipped']}.")
    split = training["split"]
    folds = [{"fold": k, "start": _when(split[k]["start_us"]), "end": _when(split[k]["end_us"]), "rows": split[k]["rows"]}
             for k in ("train", "validation", "test")]
    report.add("Data", rp.table(folds, ["fold", "start", "end", "rows"])
               + f"\n\nPurged rows: {split['purged_rows']}, embargoed rows: {split['embargoed_rows']}. "
               f"Partitions: {', '.join(training['partitions'])}.")
    top = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:15]
    if top:
        report.add("Top features", rp.table([{"feature": k, "importance": v} for k, v in top], ["feature", "importance"]))
        report.plots["feature_importance.png"] = rp.feature_importance_plot(importance)
    y = test_rows["label"].to_numpy()
    if spec.task == "classification" and score.ndim == 1 and len(np.unique(y)) > 1:
        report.plots["calibration.png"] = rp.calibration_plot((y == y.max()).astype(int), score)
    if spec.task == "classification" and "confusion_matrix" in metrics:
        m = metrics["confusion_matrix"]
        labels = [str(c) for c in sorted(np.unique(y).tolist())] if len(m) == len(np.unique(y)) else [str(i) for i in range(len(m))]
        report.plots["confusion_matrix.png"] = rp.confusion_plot(m, labels)
    if spec.task == "regression" and len(y):
        report.plots["predicted_vs_actual.png"] = rp.scatter_plot(y, score)
    return report
