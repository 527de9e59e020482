"""Gradient-boosted trees with XGBoost (``xgboost_classifier``, ``xgboost_regressor``), saved as
UBJSON (data only, nothing executes on load).

Named ``boosting`` rather than ``xgboost`` so that ``import xgboost`` never finds this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

from alevor_assets.lib.cores import usable_cores
from alevor_assets.lib.training.base import Trainer, register_trainer
from alevor_assets.lib.validation import InsufficientDataError


@lru_cache(maxsize=None)
def _estimator(kind: str) -> type:
    """XGBoost's scikit-learn estimator (``classifier`` or ``regressor``), evaluating the
    early-stopping fold on a plain ``DMatrix``.

    The stock estimators build every evaluation set as a ``QuantileDMatrix`` referencing the
    training one, and predicting on that costs the fold's rows times features again every round
    (dmlc/xgboost#10793: 10 of the 33 s that training the demo's pump detector took). A
    ``DMatrix`` of the same float32 values gives the same predictions (every split lies on a cut
    point of the training bins), so the metrics, the early stop and the model are unchanged."""
    import xgboost as xgb

    base = xgb.XGBClassifier if kind == "classifier" else xgb.XGBRegressor

    class Estimator(base):  # type: ignore[misc, valid-type]
        def _create_dmatrix(self, ref: Any, **kwargs: Any) -> Any:
            if ref is None:
                return super()._create_dmatrix(ref, **kwargs)
            return xgb.DMatrix(**kwargs, nthread=self.n_jobs)

    Estimator.__name__ = Estimator.__qualname__ = base.__name__
    return Estimator


def _matrix(x: pl.DataFrame) -> Any:
    """``x`` as XGBoost reads it fastest with the same result: a pandas frame of float32 columns
    (nulls as NaN). XGBoost bins and scores float32 values whatever it is given, and on a columnar
    frame sketches the same cut points, so the model file is byte for byte the one a Polars
    Float64 frame gives; but building the training matrix from Polars (via Arrow) took 1.8x as
    long (11.5 against 6.5 s for the demo's 458k x 102 pump-detector rows), at twice the memory.
    A row-major NumPy array would be faster still, but XGBoost sketches it differently (another model)."""
    return x.cast(pl.Float32).to_pandas()


@dataclass
class _XGBoostBase(Trainer):
    n_estimators: int = 600
    max_depth: int = 6
    learning_rate: float = 0.08
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    max_bin: int = 256
    early_stopping_rounds: int = 50
    seed: int = 42

    artifact_file: ClassVar[str] = "model.ubj"
    # Each fit seeds its own booster (random_state); XGBoost releases the GIL while boosting.
    independent_fits: ClassVar[bool] = True

    def _common(self) -> dict[str, Any]:
        return dict(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            min_child_weight=self.min_child_weight,
            reg_lambda=self.reg_lambda,
            max_bin=self.max_bin,
            tree_method="hist",
            random_state=self.seed,
            n_jobs=usable_cores(),
            early_stopping_rounds=self.early_stopping_rounds if self.early_stopping_rounds > 0 else None,
        )

    def save(self, directory: Path) -> Path:
        path = Path(directory) / self.artifact_file
        self._model.save_model(path)  # UBJSON: data only, nothing executes on load
        return path

    def contributions(self, x: pl.DataFrame) -> np.ndarray | None:
        """SHAP values from XGBoost itself (``pred_contribs``), without the bias column."""
        import xgboost as xgb

        data = _matrix(x)
        contribs = self._model.get_booster().predict(xgb.DMatrix(data), pred_contribs=True)
        if contribs.ndim == 3:  # multi-class: rows × classes × (features + bias)
            best = np.asarray(self._model.predict_proba(data)).argmax(axis=1)
            contribs = contribs[np.arange(len(best)), best]
        return contribs[:, :-1]

    def feature_importance(self) -> dict[str, float]:
        booster = self._model.get_booster()
        gains = booster.get_score(importance_type="gain")
        names = booster.feature_names or []
        total = sum(gains.values()) or 1.0
        return {n: float(gains.get(n, 0.0)) / total for n in names}

    def fit_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {}
        best = getattr(self._model, "best_iteration", None)
        if best is not None:
            info["best_iteration"] = int(best)
        return info


@register_trainer
@dataclass
class XGBoostClassifier(_XGBoostBase):
    """Gradient-boosted trees for binary or multi-class labels; classes are re-weighted to balance
    when ``balance_classes`` is on, early stopping watches the validation fold's log loss."""

    name: ClassVar[str] = "xgboost_classifier"
    task: ClassVar[str] = "classification"
    balance_classes: bool = True

    def fit(self, x_train: pl.DataFrame, y_train: np.ndarray, w_train: np.ndarray,
            x_val: pl.DataFrame, y_val: np.ndarray, w_val: np.ndarray) -> None:
        classes = np.unique(np.concatenate([y_train, y_val]))
        self._classes = [int(c) for c in classes]
        if len(classes) < 2:
            raise InsufficientDataError(f"training data has a single class {self._classes}; nothing to learn yet")
        absent = sorted(set(self._classes) - {int(c) for c in np.unique(y_train)})
        if absent:
            # XGBoost needs every class in the training rows (it fails with "Invalid classes
            # inferred from unique values of y" otherwise).
            raise InsufficientDataError(
                f"{self.name}: class(es) {absent} occur only in the validation rows; the training rows need every class"
            )
        # Labels must be 0..k-1 for XGBoost; keep the mapping to report the original values.
        index = {c: i for i, c in enumerate(self._classes)}
        yt = np.array([index[int(v)] for v in y_train])
        yv = np.array([index[int(v)] for v in y_val])
        wt = w_train * self._balance(yt) if self.balance_classes else w_train
        multi = len(classes) > 2
        self._model = _estimator("classifier")(
            **self._common(),
            objective="multi:softprob" if multi else "binary:logistic",
            eval_metric="mlogloss" if multi else "logloss",
        )
        self._model.fit(
            _matrix(x_train), yt, sample_weight=wt,
            eval_set=[(_matrix(x_val), yv)], sample_weight_eval_set=[w_val], verbose=False,
        )

    @staticmethod
    def _balance(y: np.ndarray) -> np.ndarray:
        counts = np.bincount(y)
        weights = len(y) / (len(counts) * np.maximum(counts, 1))
        return weights[y]

    def predict_score(self, x: pl.DataFrame) -> np.ndarray:
        proba = self._model.predict_proba(_matrix(x))
        return proba[:, 1] if proba.shape[1] == 2 else proba

    def load(self, path: Path) -> None:
        import xgboost as xgb

        self._model = xgb.XGBClassifier()
        self._model.load_model(path)

    def fit_info(self) -> dict[str, Any]:
        return {**super().fit_info(), "classes": getattr(self, "_classes", None)}


@register_trainer
@dataclass
class XGBoostRegressor(_XGBoostBase):
    """Gradient-boosted trees for continuous labels (squared error), early stopping on the
    validation fold."""

    name: ClassVar[str] = "xgboost_regressor"
    task: ClassVar[str] = "regression"
    objective: str = "reg:squarederror"

    def fit(self, x_train: pl.DataFrame, y_train: np.ndarray, w_train: np.ndarray,
            x_val: pl.DataFrame, y_val: np.ndarray, w_val: np.ndarray) -> None:
        self._model = _estimator("regressor")(**self._common(), objective=self.objective, eval_metric="rmse")
        self._model.fit(
            _matrix(x_train), y_train, sample_weight=w_train,
            eval_set=[(_matrix(x_val), y_val)], sample_weight_eval_set=[w_val], verbose=False,
        )

    def predict_score(self, x: pl.DataFrame) -> np.ndarray:
        return self._model.predict(_matrix(x))

    def load(self, path: Path) -> None:
        import xgboost as xgb

        self._model = xgb.XGBRegressor()
        self._model.load_model(path)
