"""Linear models: logistic regression (``logistic_regression``) and ridge
(``linear_regression``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import polars as pl

from alevor_assets.lib.training.base import register_trainer
from alevor_assets.lib.training.sklearn_base import (
    _coef_importance,
    _pipeline,
    _positive_float,
    _positive_int,
    _recording_convergence,
    _SklearnTrainer,
)


@register_trainer
@dataclass
class LogisticRegressionTrainer(_SklearnTrainer):
    """L2-regularized logistic regression (lbfgs; multinomial for more than two classes) on
    median-imputed, standardized features; classes balanced with ``class_weight="balanced"``
    (times the row weights). Importance: |coef| normalized to sum 1 (mean over classes)."""

    name: ClassVar[str] = "logistic_regression"
    task: ClassVar[str] = "classification"
    C: float = 1.0
    max_iter: int = 1000
    balance_classes: bool = True

    def __post_init__(self) -> None:
        _positive_float("C", self.C)
        _positive_int("max_iter", self.max_iter)

    def fit(self, x_train: pl.DataFrame, y_train: np.ndarray, w_train: np.ndarray,
            x_val: pl.DataFrame, y_val: np.ndarray, w_val: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        xt, _ = self._start(x_train, x_val)
        yt, _ = self._encode(y_train, y_val)
        model = LogisticRegression(
            C=self.C, max_iter=self.max_iter, class_weight="balanced" if self.balance_classes else None
        )
        self._model = _pipeline(model)
        with _recording_convergence(self._info):
            self._model.fit(xt, yt, model__sample_weight=self._weights(w_train, len(yt)))

    def _importances(self) -> np.ndarray:
        return _coef_importance(self._final_estimator().coef_)


@register_trainer
@dataclass
class LinearRegressionTrainer(_SklearnTrainer):
    """Ridge regression (L2, ``alpha``) on median-imputed, standardized features, with row
    weights. Importance: |coef| normalized to sum 1."""

    name: ClassVar[str] = "linear_regression"
    task: ClassVar[str] = "regression"
    alpha: float = 1.0

    def __post_init__(self) -> None:
        _positive_float("alpha", self.alpha, allow_zero=True)

    def fit(self, x_train: pl.DataFrame, y_train: np.ndarray, w_train: np.ndarray,
            x_val: pl.DataFrame, y_val: np.ndarray, w_val: np.ndarray) -> None:
        from sklearn.linear_model import Ridge

        xt, _ = self._start(x_train, x_val)
        yt = np.asarray(y_train, dtype=np.float64)
        self._model = _pipeline(Ridge(alpha=self.alpha))
        self._model.fit(xt, yt, model__sample_weight=self._weights(w_train, len(yt)))

    def _importances(self) -> np.ndarray:
        return _coef_importance(self._final_estimator().coef_)
