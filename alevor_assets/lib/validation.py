"""Leak-free evaluation: chronological splits with purging and embargo, metrics, gates.

``horizon_end`` (labels contract) bounds the information a label uses: it depends on no trade at or
after that instant. A training row *leaks* into a later fold when its ``horizon_end`` is after the
fold's first instant; such rows are purged. The embargo additionally drops the first ``embargo``
of every fold that follows another one, so serially dependent rows right after a boundary do not
straddle it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl


class InsufficientDataError(ValueError):
    """Not enough rows, timestamps or classes to train or evaluate yet (more days will fix it)."""


@dataclass(frozen=True)
class Fold:
    """A time span ``[start_us, end_us)`` and the rows that belong to it."""

    name: str
    start_us: int
    end_us: int
    rows: pl.DataFrame

    @property
    def height(self) -> int:
        return self.rows.height


@dataclass(frozen=True)
class Split:
    train: Fold
    validation: Fold
    test: Fold
    purged_rows: int
    embargoed_rows: int

    def describe(self) -> dict[str, Any]:
        def span(f: Fold) -> dict[str, Any]:
            return {"start_us": f.start_us, "end_us": f.end_us, "rows": f.height}

        return {
            "train": span(self.train), "validation": span(self.validation), "test": span(self.test),
            "purged_rows": self.purged_rows, "embargoed_rows": self.embargoed_rows,
        }


def _us(col: str) -> pl.Expr:
    return pl.col(col).dt.epoch("us")


def by_time(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` in (ts, token) order; without a copy when they already are."""
    ts, token = pl.col("ts"), pl.col("token")
    later = (ts > ts.shift(1)) | ((ts == ts.shift(1)) & (token > token.shift(1)))
    if rows.height < 2 or rows.select(later.slice(1).all()).item():
        return rows
    return rows.sort("ts", "token")


def purge(rows: pl.DataFrame, fold_start_us: int) -> pl.DataFrame:
    """Rows whose label horizon ends at or before ``fold_start_us`` (the rest would leak)."""
    return rows.filter(_us("horizon_end") <= fold_start_us)


def purge_overlapping(rows: pl.DataFrame, start_us: int, end_us: int) -> pl.DataFrame:
    """Rows whose label span ``[ts, horizon_end)`` does not overlap ``[start_us, end_us)``."""
    overlaps = (_us("ts") < end_us) & (_us("horizon_end") > start_us)
    return rows.filter(~overlaps)


def chronological_split(
    rows: pl.DataFrame,
    train: float = 0.70,
    validation: float = 0.15,
    embargo_us: int = 0,
) -> Split:
    """Split by time at the ``train`` and ``train + validation`` row quantiles.

    All rows with the same timestamp land in the same fold. Training rows whose horizon reaches
    the validation fold, and validation rows whose horizon reaches the test fold, are purged.
    """
    if rows.height < 10:
        raise InsufficientDataError(f"too few rows to split: {rows.height}")
    ts = rows.select(_us("ts").sort()).to_series().to_numpy()
    b1 = int(ts[min(int(len(ts) * train), len(ts) - 1)])
    b2 = int(ts[min(int(len(ts) * (train + validation)), len(ts) - 1)])
    if not (ts[0] < b1 < b2 <= ts[-1]):
        raise InsufficientDataError("not enough distinct timestamps for a train/validation/test split")
    end = int(ts[-1]) + 1
    # One boolean mask per fold, so each fold is copied once (the rows filtered in their order).
    t_us, h_us = (rows[c].dt.epoch("us").to_numpy() for c in ("ts", "horizon_end"))
    in_t, in_v, in_s = t_us < b1, (t_us >= b1) & (t_us < b2), t_us >= b2
    keep_t, keep_v = in_t & (h_us <= b1), in_v & (h_us <= b2)
    keep_v_e, keep_s_e = keep_v & (t_us >= b1 + embargo_us), in_s & (t_us >= b2 + embargo_us)
    purged = int(in_t.sum() - keep_t.sum() + in_v.sum() - keep_v.sum())
    embargoed = int(keep_v.sum() - keep_v_e.sum() + in_s.sum() - keep_s_e.sum())
    t_p, v_e, s_e = rows.filter(keep_t), rows.filter(keep_v_e), rows.filter(keep_s_e)
    return Split(
        train=Fold("train", int(ts[0]), b1, t_p),
        validation=Fold("validation", b1, b2, v_e),
        test=Fold("test", b2, end, s_e),
        purged_rows=purged,
        embargoed_rows=embargoed,
    )


def best_f1_threshold(y: np.ndarray, score: np.ndarray) -> float:
    """Decision threshold that maximizes F1 on (validation) data; 0.5 if undefined."""
    from sklearn import metrics as skm  # imported on use: sklearn costs ~1 s at every process start
    if len(np.unique(y)) < 2:
        return 0.5
    precision, recall, thresholds = skm.precision_recall_curve(y, score)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    best = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    return float(thresholds[best]) if len(thresholds) else 0.5


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def classification_metrics(
    y: np.ndarray,
    score: np.ndarray,
    threshold: float,
    *,
    classes: list[int] | None = None,
) -> dict[str, Any]:
    """Metrics for a binary score (probability of the larger class) or class probabilities (n×k,
    columns in ``classes`` order). Detectors add per-event metrics (``lib/detection.py``)."""
    from sklearn import metrics as skm
    import warnings

    out: dict[str, Any] = {"rows": int(len(y))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined metrics on one-class folds come back as None
        if score.ndim == 2:
            labels = list(classes) if classes is not None else list(range(score.shape[1]))
            predicted = np.asarray(labels)[score.argmax(axis=1)]
            present = np.unique(y)
            try:
                out["roc_auc"] = _finite(skm.roc_auc_score(y, score, multi_class="ovr", labels=labels)) if len(present) > 1 else None
            except ValueError:
                out["roc_auc"] = None
            out["accuracy"] = float(skm.accuracy_score(y, predicted))
            out["balanced_accuracy"] = float(skm.balanced_accuracy_score(y, predicted))
            out["f1"] = float(skm.f1_score(y, predicted, average="macro", labels=labels, zero_division=0))
            out["precision"] = float(skm.precision_score(y, predicted, average="macro", labels=labels, zero_division=0))
            out["recall"] = float(skm.recall_score(y, predicted, average="macro", labels=labels, zero_division=0))
            out["confusion_matrix"] = skm.confusion_matrix(y, predicted, labels=labels).tolist()
            out["class_shares"] = {str(c): float(np.mean(y == c)) for c in labels}
            return out
        positive = max(classes) if classes else 1
        y_pos = (y == positive).astype(int)
        predicted = (score >= threshold).astype(int)
        out["positives"] = int(y_pos.sum())
        out["roc_auc"] = _finite(skm.roc_auc_score(y_pos, score)) if len(np.unique(y_pos)) > 1 else None
        out["pr_auc"] = _finite(skm.average_precision_score(y_pos, score)) if y_pos.any() else None
        out["accuracy"] = float(skm.accuracy_score(y_pos, predicted))
        out["base_rate"] = float(y_pos.mean()) if len(y_pos) else None
        out["threshold"] = float(threshold)
        out["precision"] = float(skm.precision_score(y_pos, predicted, zero_division=0))
        out["recall"] = float(skm.recall_score(y_pos, predicted, zero_division=0))
        out["f1"] = float(skm.f1_score(y_pos, predicted, zero_division=0))
        out["confusion_matrix"] = skm.confusion_matrix(y_pos, predicted, labels=[0, 1]).tolist()
    return out


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    from sklearn import metrics as skm
    from scipy.stats import spearmanr

    nz = y != 0
    ic = spearmanr(pred, y).statistic if len(y) > 2 and np.std(pred) > 0 and np.std(y) > 0 else float("nan")
    mae = float(np.mean(np.abs(y - pred)))
    rmse = float(np.sqrt(np.mean((y - pred) ** 2)))
    return {
        "rows": int(len(y)),
        "mae": mae,
        "rmse": rmse,
        "neg_mae": -mae,
        "neg_rmse": -rmse,
        "r2": _finite(skm.r2_score(y, pred)) if len(y) > 1 else None,
        "ic": _finite(float(ic)),
        "directional_accuracy": float(np.mean(np.sign(pred[nz]) == np.sign(y[nz]))) if nz.any() else None,
    }


@dataclass
class GateResult:
    passed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)

    def failures(self) -> list[str]:
        return [c["rule"] for c in self.checks if not c["passed"]]


def evaluate_gate(metrics: dict[str, Any], gate: dict[str, float]) -> GateResult:
    """Every ``min_<metric>`` / ``max_<metric>`` rule must hold; a missing metric fails."""
    checks = []
    for key, bound in sorted(gate.items()):
        kind, _, metric = key.partition("_")
        value = metrics.get(metric)
        ok = value is not None and (value >= bound if kind == "min" else value <= bound)
        op = ">=" if kind == "min" else "<="
        checks.append({"rule": f"{metric} {op} {bound}", "metric": metric, "value": value, "bound": bound, "passed": bool(ok)})
    return GateResult(passed=all(c["passed"] for c in checks), checks=checks)


@dataclass(frozen=True)
class WalkForwardFold:
    """One expanding-window fold: train on everything before ``[test_start_us, test_end_us)``."""

    index: int
    train: pl.DataFrame
    test: pl.DataFrame
    test_start_us: int
    test_end_us: int
    purged_rows: int
    embargoed_rows: int

    def describe(self) -> dict[str, Any]:
        return {
            "index": self.index, "train_rows": self.train.height, "test_rows": self.test.height,
            "test_start_us": self.test_start_us, "test_end_us": self.test_end_us,
            "purged_rows": self.purged_rows, "embargoed_rows": self.embargoed_rows,
        }


def walk_forward_boundaries(ts_us: np.ndarray, n_folds: int = 4, min_train_fraction: float = 0.3) -> list[int]:
    """``n_folds + 1`` instants: test fold k is ``[b[k], b[k + 1])`` (the last ends at max ts + 1 µs).

    ``b[0]`` is the timestamp at row quantile ``min_train_fraction`` (rows before it are initial
    training only); the rows from ``b[0]`` on are cut into ``n_folds`` blocks of about equal row
    counts at the timestamps of rows ``i0 + k * m // n_folds`` (``i0``: first row at ``b[0]``,
    ``m``: rows from there on). Rows sharing a timestamp always land in the same block.
    """
    if n_folds < 1:
        raise ValueError(f"n_folds must be >= 1, got {n_folds}")
    if not 0.0 < min_train_fraction < 1.0:
        raise ValueError(f"min_train_fraction must be in (0, 1), got {min_train_fraction}")
    ts = np.sort(np.asarray(ts_us, dtype=np.int64))
    n = len(ts)
    distinct = len(np.unique(ts))
    if n == 0:
        raise InsufficientDataError("no rows for walk-forward folds")
    b0 = int(ts[min(int(n * min_train_fraction + 1e-9), n - 1)])
    i0 = int(np.searchsorted(ts, b0, side="left"))
    m = n - i0
    bounds = [b0] + [int(ts[i0 + k * m // n_folds]) for k in range(1, n_folds)] + [int(ts[-1]) + 1]
    if not (ts[0] < b0 and all(a < b for a, b in zip(bounds, bounds[1:]))):
        raise InsufficientDataError(
            f"too few distinct timestamps ({distinct} in {n} rows) for {n_folds} walk-forward folds "
            f"after an initial training share of {min_train_fraction:g}"
        )
    return bounds


def walk_forward_folds(
    rows: pl.DataFrame,
    n_folds: int = 4,
    embargo_us: int = 0,
    min_train_fraction: float = 0.3,
) -> list[WalkForwardFold]:
    """Expanding-window walk-forward folds with purging and an embargo before each test fold.

    Rows are ordered by ``ts`` (stable, so ties keep their input order); the boundaries come from
    :func:`walk_forward_boundaries`. For fold k with test span ``[test_start, test_end)``:

    * test = rows with ``test_start <= ts < test_end``;
    * train = rows with ``ts < test_start``, minus the *purged* rows whose label span
      ``[ts, horizon_end)`` overlaps the test span (``horizon_end > test_start``), minus the
      *embargoed* rows with ``ts`` in ``[test_start - embargo_us, test_start)`` that survived
      the purge (a row both purged and embargoed counts as purged).

    Raises ``ValueError`` when there are too few distinct timestamps for the folds.
    """
    if embargo_us < 0:
        raise ValueError(f"embargo_us must be >= 0, got {embargo_us}")
    ts = rows["ts"].dt.epoch("us").to_numpy()
    if len(ts) > 1 and not (ts[1:] >= ts[:-1]).all():
        rows = rows.sort("ts", maintain_order=True)
        ts = rows["ts"].dt.epoch("us").to_numpy()
    bounds = walk_forward_boundaries(ts, n_folds, min_train_fraction)
    folds = []
    for k in range(n_folds):
        start, end = bounds[k], bounds[k + 1]
        test = rows.filter((_us("ts") >= start) & (_us("ts") < end))
        before = rows.filter(_us("ts") < start)
        purged = purge_overlapping(before, start, end)
        train = purged.filter(_us("ts") < start - embargo_us)
        folds.append(WalkForwardFold(
            index=k, train=train, test=test, test_start_us=start, test_end_us=end,
            purged_rows=before.height - purged.height, embargoed_rows=purged.height - train.height,
        ))
    return folds
