"""What a model version records and reports: its metadata and its validation report."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np
import polars as pl

from alevor_assets.lib import report as rp
from alevor_assets.lib.drift import reference_bins, reference_distributions
from alevor_assets.lib.modeling import Evaluation, TrainResult
from alevor_assets.lib.specs import ModelSpec
from alevor_assets.lib.validation import evaluate_gate
from alevor_assets.lib.version import code_version


def version_metadata(
    spec: ModelSpec, result: TrainResult, rows_by_partition: dict[str, int], partition_sha256: dict[str, str | None]
) -> dict[str, Any]:
    """``metadata.json`` of a newly trained version: the spec, what it was trained on (partitions,
    row counts, file hashes, split), its validation-fold metrics and feature importance."""
    trainer = result.trainer
    importance = trainer.feature_importance()
    top = [k for k, _ in sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:10]]
    return {
        "spec": spec.raw(),
        "interval": spec.interval,
        "label": {"strategy": spec.label.strategy, "set": spec.label.set_name, "params": spec.label.params},
        "trainer": {"name": trainer.name, "params": trainer.params()},
        "features": result.features,
        "threshold": result.threshold,
        "threshold_rule": result.threshold_choice.describe() if result.threshold_choice else None,
        "training": {
            "partitions": list(rows_by_partition), "rows_by_partition": rows_by_partition,
            "split": result.split.describe(), "partition_sha256": partition_sha256,
        },
        "validation_metrics": result.validation_metrics,
        "fit": trainer.fit_info(),
        "reference": reference(result),
        "top_features": top,
        "feature_importance": importance,
        "code_version": code_version(),
    }


def reference(result: TrainResult) -> dict[str, Any]:
    """What live predictions are compared with: each feature's distribution on the training fold,
    and the scores' on the validation fold (the largest class probability for multi-class)."""
    scores = result.validation_scores
    if scores is not None and scores.ndim == 2:
        scores = scores.max(axis=1)
    return {
        "features": reference_distributions(result.split.train.rows, result.features),
        "score": reference_bins(np.asarray(scores, dtype=np.float64)) if scores is not None else None,
    }


def _when(us: Any) -> str:
    return datetime.fromtimestamp(int(us) / 1e6, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if us is not None else "–"


EVENT_COLUMNS = ["token", "announced", "extent", "first_alert", "delay_s", "outcome"]
DETECTION_FIGURES = ["threshold", "events", "events_detected", "events_detected_timely", "detection_delay_s",
                     "detection_delay_max_s", "false_alerts", "token_days", "false_alerts_per_token_day"]


def detection_section(spec: ModelSpec, metrics: dict[str, Any], events: list[dict[str, Any]]) -> str:
    """Every test event with its first alert and delay (or why it is missed or not counted), and
    the detector's figures."""
    timely = spec.alerts.timely.total_seconds()
    n = metrics.get("events") or 0
    summary = (
        f"Threshold {rp._fmt(metrics.get('threshold'))} ({spec.threshold.describe()}); {spec.alerts.describe()}.\n\n"
        f"**{metrics.get('events_detected', 0)} of {n} events detected, {metrics.get('events_detected_timely', 0)} "
        f"within {timely:g} s** of the announced start; delay median {rp._fmt(metrics.get('detection_delay_s'))} s, "
        f"worst {rp._fmt(metrics.get('detection_delay_max_s'))} s. **{metrics.get('false_alerts', 0)} false alerts "
        f"in {metrics.get('token_days', 0)} token-days with data = "
        f"{rp._fmt(metrics.get('false_alerts_per_token_day'))} per token-day** ({metrics.get('alerts', 0)} alerts in all)."
    )
    body = rp.table(events, EVENT_COLUMNS) if events else "No labelled event in the test fold."
    return summary + "\n\n" + body


def add_walk_forward(report: rp.Report, spec: ModelSpec, walk: dict[str, Any]) -> None:
    """Each walk-forward fold with its span, threshold and figures (per event for detectors), and
    for detectors every fold's events."""
    if not walk.get("folds"):
        if walk.get("skipped"):
            report.add("Walk-forward", f"Skipped: {walk['skipped']}.")
        return
    folds = walk["folds"]
    detector = any("event_table" in f for f in folds)
    figures = DETECTION_FIGURES if detector else ["threshold"]
    cols = ["fold", "test_start", "test_end", "train_rows", "test_rows", *figures, spec.primary_metric, "skipped"]
    rows = [{**f, "test_start": _when(f.get("test_start_us")), "test_end": _when(f.get("test_end_us"))} for f in folds]
    text = rp.table(rows, [c for c in dict.fromkeys(cols) if any(r.get(c) is not None for r in rows) or c == "fold"])
    text += f"\n\n{spec.primary_metric}: mean {rp._fmt(walk.get('mean'))}, std {rp._fmt(walk.get('std'))}."
    if walk.get("threshold_min") is not None:
        text += (f" Threshold ({spec.threshold.describe()}) from {rp._fmt(walk['threshold_min'])} to "
                 f"{rp._fmt(walk['threshold_max'])} across folds.")
    report.add("Walk-forward (expanding window, purged, embargoed)", text)
    if detector:
        events = [{"fold": f["fold"], **e} for f in folds for e in f.get("event_table", [])]
        report.add("Walk-forward events", rp.table(events, ["fold", *EVENT_COLUMNS]) if events else "No labelled event in any fold.")


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
    if evaluation.detection is not None:
        report.add("Detection (test fold, per event)", detection_section(spec, metrics, evaluation.detection.events))
    add_walk_forward(report, spec, walk)
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
