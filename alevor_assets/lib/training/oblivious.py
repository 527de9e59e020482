"""Oblivious (symmetric) gradient-boosted trees with CatBoost (``catboost_classifier``,
``catboost_regressor``), saved in CatBoost's JSON model format (data only; nothing executes on
load; the file is checked to be a CatBoost JSON model before CatBoost reads it).

Named ``oblivious`` rather than ``catboost`` so that ``import catboost`` always means the library.
Like the XGBoost trainers: typed hyperparameters, classes mapped to 0..k-1 in sorted order and
re-weighted to balance when ``balance_classes`` is on, early stopping on the validation fold (the
best iteration kept), a fixed seed and threads bounded by the machine. CatBoost writes no files
of its own (``allow_writing_files`` off).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

from alevor_assets.lib.cores import usable_cores
from alevor_assets.lib.training.base import Trainer, register_trainer
from alevor_assets.lib.training.leafwise import classifier_targets, float_matrix


def check_catboost_json(path: Path) -> dict[str, Any]:
    """The parsed model if ``path`` is a CatBoost JSON model (oblivious trees, features info);
    ``ValueError`` otherwise. ``json`` only builds dicts, lists, strings and numbers."""
    try:
        with open(path, "rb") as fh:
            doc = json.load(fh)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a CatBoost JSON model: {exc}") from None
    if not isinstance(doc, dict) or not {"oblivious_trees", "features_info", "model_info"} <= set(doc):
        what = f"keys {sorted(doc)[:8]}" if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{path}: not a CatBoost JSON model ({what})")
    return doc


@dataclass
class _CatBoostBase(Trainer):
    iterations: int = 600
    depth: int = 6
    learning_rate: float = 0.05
    l2_leaf_reg: float = 3.0
    border_count: int = 254
    early_stopping_rounds: int = 50
    seed: int = 42

    artifact_file: ClassVar[str] = "model.catboost.json"

    def _common(self) -> dict[str, Any]:
        return dict(
            iterations=self.iterations, depth=self.depth, learning_rate=self.learning_rate,
            l2_leaf_reg=self.l2_leaf_reg, border_count=self.border_count, random_seed=self.seed,
            thread_count=usable_cores(), verbose=False, allow_writing_files=False,
            **({"od_type": "Iter", "od_wait": self.early_stopping_rounds, "use_best_model": True}
               if self.early_stopping_rounds > 0 else {}),
        )

    def _fit(self, model: Any, xt, yt, wt, xv, yv, wv) -> None:
        from catboost import Pool

        model.fit(Pool(xt, yt, weight=wt, feature_names=self._features),
                  eval_set=Pool(xv, yv, weight=wv, feature_names=self._features))
        self._model = model
        best = model.get_best_iteration()
        self._info: dict[str, Any] = {"best_iteration": int(best)} if best is not None else {}

    def contributions(self, x: pl.DataFrame) -> np.ndarray | None:
        """SHAP values from CatBoost itself, without the bias column (multi-class: of the most
        likely class)."""
        from catboost import Pool

        pool = Pool(float_matrix(x, self._features), feature_names=self._features)
        values = np.asarray(self._model.get_feature_importance(pool, type="ShapValues"))
        if values.ndim == 3:  # rows × classes × (features + bias)
            score = self.predict_score(x)
            values = values[np.arange(len(values)), np.asarray(score).argmax(axis=1)]
        return values[:, :-1]

    def feature_importance(self) -> dict[str, float]:
        values = np.asarray(self._model.get_feature_importance(), dtype=np.float64)
        total = float(values.sum()) or 1.0
        return {f: float(v) / total for f, v in zip(self._features, values)}

    def fit_info(self) -> dict[str, Any]:
        return dict(getattr(self, "_info", {}))

    def save(self, directory: Path) -> Path:
        path = Path(directory) / self.artifact_file
        self._model.save_model(str(path), format="json")
        return path

    def _load(self, model: Any, path: Path) -> None:
        doc = check_catboost_json(Path(path))
        model.load_model(str(path), format="json")
        self._model = model
        self._features = [str(f.get("feature_id") or f.get("flat_feature_index"))
                          for f in doc["features_info"].get("float_features", [])]
        self._info = {}


@register_trainer
@dataclass
class CatBoostClassifierTrainer(_CatBoostBase):
    """CatBoost for binary or multi-class labels; classes re-weighted to balance when
    ``balance_classes`` is on, early stopping on the validation fold's log loss."""

    name: ClassVar[str] = "catboost_classifier"
    task: ClassVar[str] = "classification"
    balance_classes: bool = True

    def fit(self, x_train: pl.DataFrame, y_train: np.ndarray, w_train: np.ndarray,
            x_val: pl.DataFrame, y_val: np.ndarray, w_val: np.ndarray) -> None:
        from catboost import CatBoostClassifier

        self._features = [str(c) for c in x_train.columns]
        classes, yt, yv, wt = classifier_targets(self.name, y_train, w_train, y_val, self.balance_classes)
        loss = "MultiClass" if len(classes) > 2 else "Logloss"
        self._fit(CatBoostClassifier(**self._common(), loss_function=loss),
                  float_matrix(x_train, self._features), yt, wt,
                  float_matrix(x_val, self._features), yv, np.asarray(w_val, dtype=np.float64))
        self._info["classes"] = classes

    def predict_score(self, x: pl.DataFrame) -> np.ndarray:
        proba = np.asarray(self._model.predict(float_matrix(x, self._features), prediction_type="Probability"))
        return proba[:, 1] if proba.shape[1] == 2 else proba

    def load(self, path: Path) -> None:
        from catboost import CatBoostClassifier

        self._load(CatBoostClassifier(), path)


@register_trainer
@dataclass
class CatBoostRegressorTrainer(_CatBoostBase):
    """CatBoost for continuous labels (RMSE), early stopping on the validation fold."""

    name: ClassVar[str] = "catboost_regressor"
    task: ClassVar[str] = "regression"

    def fit(self, x_train: pl.DataFrame, y_train: np.ndarray, w_train: np.ndarray,
            x_val: pl.DataFrame, y_val: np.ndarray, w_val: np.ndarray) -> None:
        from catboost import CatBoostRegressor

        self._features = [str(c) for c in x_train.columns]
        self._fit(CatBoostRegressor(**self._common(), loss_function="RMSE"),
                  float_matrix(x_train, self._features), np.asarray(y_train, dtype=np.float64),
                  np.asarray(w_train, dtype=np.float64), float_matrix(x_val, self._features),
                  np.asarray(y_val, dtype=np.float64), np.asarray(w_val, dtype=np.float64))

    def predict_score(self, x: pl.DataFrame) -> np.ndarray:
        return np.asarray(self._model.predict(float_matrix(x, self._features)), dtype=np.float64)

    def load(self, path: Path) -> None:
        from catboost import CatBoostRegressor

        self._load(CatBoostRegressor(), path)
