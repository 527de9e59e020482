"""Linear support-vector machines (``svm_classifier``, Platt-calibrated, and ``svm_regressor``)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl

from alevor_assets.lib.training.base import register_trainer
from alevor_assets.lib.validation import InsufficientDataError
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
class SVMClassifierTrainer(_SklearnTrainer):
    """Linear SVM (``LinearSVC``, squared hinge, one-vs-rest for more than two classes) on
    median-imputed, standardized features, classes balanced with ``class_weight="balanced"``
    (times the row weights). Probabilities come from Platt scaling fitted on the *validation*
    fold (``CalibratedClassifierCV`` around a ``FrozenEstimator``, weighted by the validation row
    weights, not re-balanced), so the validation fold must hold every class. Kernel SVMs
    (``SVC``) are not offered: their fit is quadratic to cubic in the row count, which does not
    scale to our training sets. Importance: |coef| normalized to sum 1 (mean over classes)."""

    name: ClassVar[str] = "svm_classifier"
    task: ClassVar[str] = "classification"
    C: float = 1.0
    max_iter: int = 5000
    balance_classes: bool = True
    seed: int = 42

    def __post_init__(self) -> None:
        _positive_float("C", self.C)
        _positive_int("max_iter", self.max_iter)

    def fit(self, x_train: pl.DataFrame, y_train: np.ndarray, w_train: np.ndarray,
            x_val: pl.DataFrame, y_val: np.ndarray, w_val: np.ndarray) -> None:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.frozen import FrozenEstimator
        from sklearn.svm import LinearSVC

        xt, xv = self._start(x_train, x_val)
        yt, yv = self._encode(y_train, y_val)
        absent = sorted(set(range(len(self._classes))) - set(np.unique(yv).tolist()))
        if absent:
            names = [self._classes[i] for i in absent]
            raise InsufficientDataError(
                f"{self.name}: class(es) {names} are missing from the validation fold, which calibrates "
                "the probabilities"
            )
        svm = LinearSVC(
            C=self.C,
            max_iter=self.max_iter,
            class_weight="balanced" if self.balance_classes else None,
            random_state=self.seed,
        )
        pipe = _pipeline(svm)
        with _recording_convergence(self._info):
            pipe.fit(xt, yt, model__sample_weight=self._weights(w_train, len(yt)))
        # A frozen estimator is never refit: all of the validation fold calibrates it.
        self._model = CalibratedClassifierCV(FrozenEstimator(pipe), method="sigmoid")
        with warnings.catch_warnings():
            # The weights are meant for the calibration only (the SVM is frozen), which is what
            # this warning says happens.
            warnings.filterwarnings("ignore", message="Since FrozenEstimator does not appear to accept sample_weight")
            self._model.fit(xv, yv, sample_weight=self._weights(w_val, len(yv)))

    def _final_estimator(self) -> Any:
        return self._model.estimator.estimator[-1]  # Calibrated -> Frozen -> Pipeline -> LinearSVC

    def _importances(self) -> np.ndarray:
        return _coef_importance(self._final_estimator().coef_)


@register_trainer
@dataclass
class SVMRegressorTrainer(_SklearnTrainer):
    """Linear support-vector regression (``LinearSVR``, epsilon-insensitive loss) on
    median-imputed, standardized features, with row weights. Kernel SVR is not offered: it does
    not scale to our row counts. Importance: |coef| normalized to sum 1."""

    name: ClassVar[str] = "svm_regressor"
    task: ClassVar[str] = "regression"
    C: float = 1.0
    epsilon: float = 0.0
    max_iter: int = 5000
    seed: int = 42

    def __post_init__(self) -> None:
        _positive_float("C", self.C)
        _positive_float("epsilon", self.epsilon, allow_zero=True)
        _positive_int("max_iter", self.max_iter)

    def fit(self, x_train: pl.DataFrame, y_train: np.ndarray, w_train: np.ndarray,
            x_val: pl.DataFrame, y_val: np.ndarray, w_val: np.ndarray) -> None:
        from sklearn.svm import LinearSVR

        xt, _ = self._start(x_train, x_val)
        yt = np.asarray(y_train, dtype=np.float64)
        svr = LinearSVR(C=self.C, epsilon=self.epsilon, max_iter=self.max_iter, random_state=self.seed)
        self._model = _pipeline(svr)
        with _recording_convergence(self._info):
            self._model.fit(xt, yt, model__sample_weight=self._weights(w_train, len(yt)))

    def _importances(self) -> np.ndarray:
        return _coef_importance(self._final_estimator().coef_)
