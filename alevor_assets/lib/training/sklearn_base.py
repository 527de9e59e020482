"""What the scikit-learn trainers share, and how their models are saved (skops).

Every scikit-learn trainer fits a Pipeline(SimpleImputer(median), StandardScaler(), model) (no
scaler for forests) on the feature columns in the order the training frame gave them; the order
is stored with the model and prediction selects the same columns. Classification labels are
mapped to 0..k-1 in sorted order (like the XGBoost classifier), so multi-class probability
columns follow the sorted class values and a binary score is the probability of the larger one.
Non-finite feature values (NaN, null, ±inf) count as missing and are imputed.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np
import polars as pl

from alevor_assets.lib.training.base import Trainer, encode_classes, recorded_fit_info
from alevor_assets.lib.training.skops_io import _SKOPS_FORMAT, check_skops_file


def _imputer() -> Any:
    from sklearn.impute import SimpleImputer

    # keep_empty_features: a column that is all-missing in training stays (imputed 0) so that
    # coefficients and importances line up with the feature names.
    return SimpleImputer(strategy="median", add_indicator=False, keep_empty_features=True)


def _pipeline(model: Any, scale: bool = True) -> Any:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps: list[tuple[str, Any]] = [("impute", _imputer())]
    if scale:
        steps.append(("scale", StandardScaler()))
    steps.append(("model", model))
    return Pipeline(steps)


def _balanced(y: np.ndarray, k: int) -> np.ndarray:
    """Per-row weights n / (k · count(class)), as ``class_weight="balanced"`` computes them."""
    counts = np.bincount(y, minlength=k)
    weights = len(y) / (k * np.maximum(counts, 1))
    return weights[y]


def _coef_importance(coef: Any) -> np.ndarray:
    """|coef| on standardized features, averaged over classes, normalized to sum 1."""
    a = np.abs(np.atleast_2d(np.asarray(coef, dtype=np.float64))).mean(axis=0)
    total = a.sum()
    return a / total if total > 0 else a


@contextmanager
def _recording_convergence(info: dict[str, Any]) -> Iterator[None]:
    """Record in ``info["converged"]`` whether the solver warned that it did not converge (the
    warnings are re-issued, so they still reach the logs)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    info["converged"] = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"hyperparameter {name!r} must be an integer >= {minimum}, got {value!r}")


def _positive_float(name: str, value: Any, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ValueError(f"hyperparameter {name!r} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"hyperparameter {name!r} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


@dataclass
class _SklearnTrainer(Trainer):
    """Shared plumbing for the scikit-learn trainers: the feature matrix, label encoding, skops
    save/load behind the type allowlist, importances and fit facts."""

    artifact_file: ClassVar[str] = "model.skops"

    # -- data ------------------------------------------------------------------------------------
    def _matrix(self, x: pl.DataFrame) -> np.ndarray:
        missing = [c for c in self._features if c not in x.columns]
        if missing:
            raise ValueError(
                f"{self.name}: feature column(s) {missing} missing; the model was fitted on {self._features}"
            )
        m = x.select([pl.col(c).cast(pl.Float64) for c in self._features]).to_numpy()
        m = np.asarray(m, dtype=np.float64)
        return np.where(np.isfinite(m), m, np.nan)

    def _start(self, x_train: pl.DataFrame, x_val: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        self._features = [str(c) for c in x_train.columns]
        if not self._features:
            raise ValueError(f"{self.name}: no feature columns to fit on")
        self._classes: list[int] | None = None
        self._info: dict[str, Any] = {}
        return self._matrix(x_train), self._matrix(x_val)

    def _encode(self, y_train: np.ndarray, y_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map class labels (any ints, e.g. -1/0/1) to 0..k-1 in sorted order."""
        self._classes, yt, yv = encode_classes(self.name, y_train, y_val)
        return yt, yv

    @staticmethod
    def _weights(w: np.ndarray | None, n: int) -> np.ndarray:
        return np.ones(n) if w is None else np.asarray(w, dtype=np.float64)

    # -- model -----------------------------------------------------------------------------------
    def _final_estimator(self) -> Any:
        return self._model[-1]

    def _importances(self) -> np.ndarray | None:
        return None

    def predict_score(self, x: pl.DataFrame) -> np.ndarray:
        xm = self._matrix(x)
        if self.task == "classification":
            proba = self._model.predict_proba(xm)
            return proba[:, 1] if proba.shape[1] == 2 else proba
        return np.asarray(self._model.predict(xm), dtype=np.float64)

    def feature_importance(self) -> dict[str, float]:
        values = self._importances()
        if values is None:
            return {}
        return {f: float(v) for f, v in zip(self._features, values)}

    def fit_info(self) -> dict[str, Any]:
        return recorded_fit_info(self)

    # -- persistence -----------------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        import skops.io as sio

        path = Path(directory) / self.artifact_file
        state = {
            "format": _SKOPS_FORMAT,
            "trainer": self.name,
            "features": list(self._features),
            "classes": self._classes,
            "info": dict(self._info),
            "model": self._model,
        }
        sio.dump(state, path)  # skops: a zip of JSON and arrays, no pickle
        return path

    def load(self, path: Path) -> None:
        """Refuse any type outside the allowlist before skops constructs anything."""
        import skops.io as sio

        path = Path(path)
        trusted = check_skops_file(path)
        state = sio.load(path, trusted=trusted)
        if not isinstance(state, dict) or state.get("format") != _SKOPS_FORMAT or state.get("trainer") != self.name:
            raise ValueError(f"{path} is not a {self.name} artifact")
        self._model = state["model"]
        self._features = [str(c) for c in state["features"]]
        self._classes = None if state["classes"] is None else [int(c) for c in state["classes"]]
        self._info = dict(state["info"])
