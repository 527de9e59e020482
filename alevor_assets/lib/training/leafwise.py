"""Leaf-wise gradient-boosted trees with LightGBM (``lightgbm_classifier``, ``lightgbm_regressor``),
saved in LightGBM's own text model format (data only; nothing executes on load).

Named ``leafwise`` rather than ``lightgbm`` so that ``import lightgbm`` always means the library.
Like the XGBoost trainers: typed hyperparameters, classes mapped to 0..k-1 in sorted order and
re-weighted to balance when ``balance_classes`` is on, early stopping on the validation fold,
a fixed seed, deterministic histogram building and threads bounded by the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

from alevor_assets.lib.cores import usable_cores
from alevor_assets.lib.training.base import Trainer, encode_classes, register_trainer
from alevor_assets.lib.training.sklearn_base import _balanced

#: The objectives a loaded LightGBM model may declare.
LIGHTGBM_OBJECTIVES = ("binary", "multiclass", "regression", "regression_l1", "huber")


def classifier_targets(name: str, y_train: np.ndarray, w_train: np.ndarray, y_val: np.ndarray,
                       balance: bool) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """:func:`encode_classes` plus the training weights, re-weighted to balance the classes when
    ``balance`` is on: what a gradient-boosting classifier is fitted with."""
    classes, yt, yv = encode_classes(name, y_train, y_val)
    wt = np.asarray(w_train, dtype=np.float64)
    if balance:
        wt = wt * _balanced(yt, len(classes))
    return classes, yt, yv, wt


def float_matrix(x: pl.DataFrame, features: list[str]) -> np.ndarray:
    m = np.asarray(x.select([pl.col(c).cast(pl.Float64) for c in features]).to_numpy(), dtype=np.float64)
    return np.where(np.isfinite(m), m, np.nan)


def check_lightgbm_text(path: Path) -> None:
    """Refuse a file that is not a LightGBM text model with an allowlisted objective."""
    with open(path, "rb") as fh:
        head = fh.read(4096).decode("utf-8", errors="replace").splitlines()
    objective = next((line.split("=", 1)[1].split()[0] for line in head if line.startswith("objective=")), None)
    if not head or head[0].strip() != "tree" or not any(line.startswith("version=v") for line in head):
        raise ValueError(f"{path}: not a LightGBM text model")
    if objective not in LIGHTGBM_OBJECTIVES:
        raise ValueError(f"{path}: LightGBM objective {objective!r} is not allowlisted {LIGHTGBM_OBJECTIVES}")


@dataclass
class _LightGBMBase(Trainer):
    n_estimators: int = 600
    learning_rate: float = 0.05
    num_leaves: int = 31
    max_depth: int = -1
    min_child_samples: int = 20
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    max_bin: int = 255
    early_stopping_rounds: int = 50
    seed: int = 42

    artifact_file: ClassVar[str] = "model.lgb.txt"

    def _params(self) -> dict[str, Any]:
        return dict(
            learning_rate=self.learning_rate, num_leaves=self.num_leaves, max_depth=self.max_depth,
            min_data_in_leaf=self.min_child_samples, bagging_fraction=self.subsample,
            bagging_freq=1 if self.subsample < 1.0 else 0, feature_fraction=self.colsample_bytree,
            lambda_l2=self.reg_lambda, max_bin=self.max_bin, seed=self.seed, deterministic=True,
            force_row_wise=True, num_threads=usable_cores(), verbosity=-1,
        )

    def _fit(self, params: dict[str, Any], xt, yt, wt, xv, yv, wv) -> None:
        import lightgbm as lgb

        train = lgb.Dataset(xt, yt, weight=wt, feature_name=self._features, free_raw_data=True)
        val = lgb.Dataset(xv, yv, weight=wv, reference=train)
        callbacks = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)] if self.early_stopping_rounds > 0 else []
        self._booster = lgb.train({**self._params(), **params}, train, num_boost_round=self.n_estimators,
                                  valid_sets=[val], callbacks=callbacks)
        best = self._booster.best_iteration
        self._info = {"best_iteration": int(best)} if best else {}

    def _raw(self, x: pl.DataFrame) -> np.ndarray:
        return np.asarray(self._booster.predict(float_matrix(x, self._features)))

    def contributions(self, x: pl.DataFrame) -> np.ndarray | None:
        """SHAP values from LightGBM itself (``pred_contrib``), without the bias column."""
        m = float_matrix(x, self._features)
        contribs = np.asarray(self._booster.predict(m, pred_contrib=True))
        width = len(self._features) + 1
        if contribs.shape[1] > width:  # multi-class: classes side by side
            best = np.asarray(self._booster.predict(m)).argmax(axis=1)
            contribs = contribs.reshape(len(m), -1, width)[np.arange(len(m)), best]
        return contribs[:, :-1]

    def feature_importance(self) -> dict[str, float]:
        gains = self._booster.feature_importance(importance_type="gain")
        total = float(np.sum(gains)) or 1.0
        return {f: float(g) / total for f, g in zip(self._booster.feature_name(), gains)}

    def fit_info(self) -> dict[str, Any]:
        return dict(getattr(self, "_info", {}))

    def save(self, directory: Path) -> Path:
        path = Path(directory) / self.artifact_file
        self._booster.save_model(str(path), num_iteration=self._booster.best_iteration or None)
        return path

    def load(self, path: Path) -> None:
        import lightgbm as lgb

        check_lightgbm_text(Path(path))
        self._booster = lgb.Booster(model_file=str(path))
        self._features = list(self._booster.feature_name())
        self._info = {}


@register_trainer
@dataclass
class LightGBMClassifier(_LightGBMBase):
    """LightGBM for binary or multi-class labels; classes re-weighted to balance when
    ``balance_classes`` is on, early stopping on the validation fold's log loss."""

    name: ClassVar[str] = "lightgbm_classifier"
    task: ClassVar[str] = "classification"
    balance_classes: bool = True

    def fit(self, x_train: pl.DataFrame, y_train: np.ndarray, w_train: np.ndarray,
            x_val: pl.DataFrame, y_val: np.ndarray, w_val: np.ndarray) -> None:
        self._features = [str(c) for c in x_train.columns]
        classes, yt, yv, wt = classifier_targets(self.name, y_train, w_train, y_val, self.balance_classes)
        multi = len(classes) > 2
        params = ({"objective": "multiclass", "num_class": len(classes), "metric": "multi_logloss"}
                  if multi else {"objective": "binary", "metric": "binary_logloss"})
        self._fit(params, float_matrix(x_train, self._features), yt, wt,
                  float_matrix(x_val, self._features), yv, np.asarray(w_val, dtype=np.float64))
        self._info["classes"] = classes

    def predict_score(self, x: pl.DataFrame) -> np.ndarray:
        return self._raw(x)  # binary: positive-class probability; multi-class: n × k


@register_trainer
@dataclass
class LightGBMRegressor(_LightGBMBase):
    """LightGBM for continuous labels (squared error), early stopping on the validation fold."""

    name: ClassVar[str] = "lightgbm_regressor"
    task: ClassVar[str] = "regression"

    def fit(self, x_train: pl.DataFrame, y_train: np.ndarray, w_train: np.ndarray,
            x_val: pl.DataFrame, y_val: np.ndarray, w_val: np.ndarray) -> None:
        self._features = [str(c) for c in x_train.columns]
        self._fit({"objective": "regression", "metric": "l2"},
                  float_matrix(x_train, self._features), np.asarray(y_train, dtype=np.float64),
                  np.asarray(w_train, dtype=np.float64), float_matrix(x_val, self._features),
                  np.asarray(y_val, dtype=np.float64), np.asarray(w_val, dtype=np.float64))

    def predict_score(self, x: pl.DataFrame) -> np.ndarray:
        return self._raw(x).astype(np.float64)
