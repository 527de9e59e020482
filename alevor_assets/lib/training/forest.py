"""Random forests (``random_forest_classifier``, ``random_forest_regressor``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl

from alevor_assets.lib.cores import in_threads, usable_cores
from alevor_assets.lib.training.base import register_trainer
from alevor_assets.lib.training.sklearn_base import _pipeline, _positive_int, _SklearnTrainer


def _max_features(value: Any) -> str | float:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("sqrt", "log2"):
            return text
        try:
            value = float(text)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(
            f"hyperparameter 'max_features' must be 'sqrt', 'log2' or a fraction in (0, 1], got {value!r}"
        )
    return float(value)


def _by_row_chunks(fn: Any, z: np.ndarray, min_rows: int = 4096) -> np.ndarray:
    """``fn`` over contiguous row blocks in threads (tree traversal releases the GIL); each row's
    result does not depend on the split."""
    threads = usable_cores()
    if threads == 1 or len(z) < 2 * min_rows:
        return fn(z)
    bounds = np.linspace(0, len(z), min(threads, len(z) // min_rows) + 1).astype(int)
    return np.concatenate(in_threads(lambda ab: fn(z[ab[0] : ab[1]]), list(zip(bounds[:-1], bounds[1:])), threads))


@dataclass
class _ForestBase(_SklearnTrainer):
    n_estimators: int = 300
    max_depth: int | None = None
    min_samples_leaf: int = 5
    seed: int = 42

    def __post_init__(self) -> None:
        _positive_int("n_estimators", self.n_estimators)
        _positive_int("min_samples_leaf", self.min_samples_leaf)
        if self.max_depth is not None:
            _positive_int("max_depth", self.max_depth)
        self.max_features = _max_features(self.max_features)

    def _forest_params(self) -> dict[str, Any]:
        return dict(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            n_jobs=usable_cores(),
            random_state=self.seed,
        )

    def _importances(self) -> np.ndarray:
        return self._final_estimator().feature_importances_  # impurity-based, sums to 1

    def predict_score(self, x: pl.DataFrame) -> np.ndarray:
        """Deterministic: scikit-learn's multi-threaded forest prediction adds the trees' outputs
        in thread-completion order (last-bit differences between calls), so the trees are summed
        in order with ``n_jobs=1`` and the threads split the rows instead."""
        forest = self._final_estimator()
        forest.n_jobs = 1
        z = self._model[:-1].transform(self._matrix(x))
        method = forest.predict_proba if self.task == "classification" else forest.predict
        out = np.asarray(_by_row_chunks(method, z), dtype=np.float64)
        if self.task == "classification" and out.shape[1] == 2:
            return out[:, 1]
        return out


@register_trainer
@dataclass
class RandomForestClassifierTrainer(_ForestBase):
    """Random forest (impurity splits, bootstrap) on median-imputed features, classes balanced
    with ``class_weight="balanced"`` (times the row weights). Importance: mean impurity decrease.
    Artifact size grows with rows (``max_depth=None``): raise ``min_samples_leaf`` for big sets."""

    name: ClassVar[str] = "random_forest_classifier"
    task: ClassVar[str] = "classification"
    max_features: float | str = "sqrt"
    balance_classes: bool = True

    def fit(self, x_train: pl.DataFrame, y_train: np.ndarray, w_train: np.ndarray,
            x_val: pl.DataFrame, y_val: np.ndarray, w_val: np.ndarray) -> None:
        from sklearn.ensemble import RandomForestClassifier

        xt, _ = self._start(x_train, x_val)
        yt, _ = self._encode(y_train, y_val)
        model = RandomForestClassifier(
            **self._forest_params(), class_weight="balanced" if self.balance_classes else None
        )
        self._model = _pipeline(model, scale=False)
        self._model.fit(xt, yt, model__sample_weight=self._weights(w_train, len(yt)))


@register_trainer
@dataclass
class RandomForestRegressorTrainer(_ForestBase):
    """Random forest regression (squared error) on median-imputed features, with row weights.
    Importance: mean impurity decrease."""

    name: ClassVar[str] = "random_forest_regressor"
    task: ClassVar[str] = "regression"
    max_features: float | str = 1.0

    def fit(self, x_train: pl.DataFrame, y_train: np.ndarray, w_train: np.ndarray,
            x_val: pl.DataFrame, y_val: np.ndarray, w_val: np.ndarray) -> None:
        from sklearn.ensemble import RandomForestRegressor

        xt, _ = self._start(x_train, x_val)
        yt = np.asarray(y_train, dtype=np.float64)
        self._model = _pipeline(RandomForestRegressor(**self._forest_params()), scale=False)
        self._model.fit(xt, yt, model__sample_weight=self._weights(w_train, len(yt)))
