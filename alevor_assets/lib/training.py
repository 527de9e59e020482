"""Trainers: pluggable model families, registered by name, with typed hyperparameters.

A trainer is a dataclass whose fields are its hyperparameters. It fits on the training fold (with
early stopping on the validation fold where the algorithm has it), scores new rows, and saves its
model in a format that cannot execute code when loaded (XGBoost's UBJSON here). Add your own with
``@register_trainer``; the README shows a complete example.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import polars as pl


class Trainer:
    """Base class for trainers; subclasses are dataclasses registered with ``@register_trainer``."""

    name: ClassVar[str]
    task: ClassVar[str]  # "classification" or "regression"
    artifact_file: ClassVar[str] = "model.bin"

    def fit(
        self,
        x_train: pl.DataFrame,
        y_train: np.ndarray,
        w_train: np.ndarray,
        x_val: pl.DataFrame,
        y_val: np.ndarray,
        w_val: np.ndarray,
    ) -> None:  # pragma: no cover - interface
        """Fit on the training fold; ``x_*`` hold only feature columns (float, null = missing)."""
        raise NotImplementedError

    def predict_score(self, x: pl.DataFrame) -> np.ndarray:
        """Positive-class probability (binary), class probabilities (multi-class, n×k) or the
        predicted value (regression)."""
        raise NotImplementedError  # pragma: no cover - interface

    def save(self, directory: Path) -> Path:
        raise NotImplementedError  # pragma: no cover - interface

    def load(self, path: Path) -> None:
        raise NotImplementedError  # pragma: no cover - interface

    def feature_importance(self) -> dict[str, float]:
        return {}

    def fit_info(self) -> dict[str, Any]:
        """Facts about the fit worth recording (best iteration, classes, ...)."""
        return {}

    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}


_TRAINERS: dict[str, type[Trainer]] = {}
T = TypeVar("T", bound=type[Trainer])


def register_trainer(cls: T) -> T:
    """Class decorator: make a trainer available to model specs under ``cls.name``."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"trainer {cls.__name__} must be a dataclass")
    if getattr(cls, "task", None) not in ("classification", "regression"):
        raise TypeError(f"trainer {cls.__name__} needs task 'classification' or 'regression'")
    _TRAINERS[cls.name] = cls
    return cls


def trainers() -> dict[str, type[Trainer]]:
    return dict(_TRAINERS)


def make_trainer(name: str, params: dict[str, Any] | None = None) -> Trainer:
    try:
        cls = _TRAINERS[name]
    except KeyError:
        raise ValueError(f"unknown trainer {name!r}; registered: {sorted(_TRAINERS)}") from None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(params or {}) - set(fields)
    if unknown:
        raise ValueError(f"trainer {name!r} has no hyperparameter(s) {sorted(unknown)}; it takes {sorted(fields)}")
    typed = {}
    for key, value in (params or {}).items():
        kind = fields[key].type
        typed[key] = _coerce(key, value, kind)
    return cls(**typed)


def _coerce(key: str, value: Any, kind: Any) -> Any:
    kinds = {"int": int, "float": float, "bool": bool, "str": str}
    target = kinds.get(kind if isinstance(kind, str) else getattr(kind, "__name__", ""))
    if target is None or value is None:
        return value
    if target is bool and not isinstance(value, bool):
        raise ValueError(f"hyperparameter {key!r} must be true or false, got {value!r}")
    if target is int and isinstance(value, float) and not value.is_integer():
        raise ValueError(f"hyperparameter {key!r} must be an integer, got {value!r}")
    try:
        return target(value)
    except (TypeError, ValueError):
        raise ValueError(f"hyperparameter {key!r} must be {target.__name__}, got {value!r}") from None


def _threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


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
            n_jobs=_threads(),
            early_stopping_rounds=self.early_stopping_rounds if self.early_stopping_rounds > 0 else None,
        )

    def save(self, directory: Path) -> Path:
        path = Path(directory) / self.artifact_file
        self._model.save_model(path)  # UBJSON: data only, nothing executes on load
        return path

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

    def fit(self, x_train, y_train, w_train, x_val, y_val, w_val):
        import xgboost as xgb

        classes = np.unique(np.concatenate([y_train, y_val]))
        self._classes = [int(c) for c in classes]
        if len(classes) < 2:
            raise ValueError(f"training data has a single class {self._classes}; nothing to learn")
        # Labels must be 0..k-1 for XGBoost; keep the mapping to report the original values.
        index = {c: i for i, c in enumerate(self._classes)}
        yt = np.array([index[int(v)] for v in y_train])
        yv = np.array([index[int(v)] for v in y_val])
        wt = w_train * self._balance(yt) if self.balance_classes else w_train
        multi = len(classes) > 2
        self._model = xgb.XGBClassifier(
            **self._common(),
            objective="multi:softprob" if multi else "binary:logistic",
            eval_metric="mlogloss" if multi else "logloss",
        )
        self._model.fit(
            x_train, yt, sample_weight=wt,
            eval_set=[(x_val, yv)], sample_weight_eval_set=[w_val], verbose=False,
        )

    @staticmethod
    def _balance(y: np.ndarray) -> np.ndarray:
        counts = np.bincount(y)
        weights = len(y) / (len(counts) * np.maximum(counts, 1))
        return weights[y]

    def predict_score(self, x: pl.DataFrame) -> np.ndarray:
        proba = self._model.predict_proba(x)
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

    def fit(self, x_train, y_train, w_train, x_val, y_val, w_val):
        import xgboost as xgb

        self._model = xgb.XGBRegressor(**self._common(), objective=self.objective, eval_metric="rmse")
        self._model.fit(
            x_train, y_train, sample_weight=w_train,
            eval_set=[(x_val, y_val)], sample_weight_eval_set=[w_val], verbose=False,
        )

    def predict_score(self, x: pl.DataFrame) -> np.ndarray:
        return self._model.predict(x)

    def load(self, path: Path) -> None:
        import xgboost as xgb

        self._model = xgb.XGBRegressor()
        self._model.load_model(path)
