"""Trainers: pluggable model families, registered by name, with typed hyperparameters.

A trainer is a dataclass whose fields are its hyperparameters. It fits on the training fold (with
early stopping on the validation fold where the algorithm has it), scores new rows, and saves its
model in a format that cannot execute code when loaded: XGBoost's UBJSON for the XGBoost trainers,
skops (checked against a type allowlist before loading) for the scikit-learn ones; never pickle.
Add your own with ``@register_trainer``; the README shows a complete example.

Registered here: ``xgboost_classifier``, ``xgboost_regressor``, ``random_forest_classifier``,
``random_forest_regressor``, ``logistic_regression``, ``linear_regression`` (ridge),
``mlp_classifier``, ``mlp_regressor``, ``svm_classifier`` (linear, Platt-calibrated) and
``svm_regressor`` (linear).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, TypeVar

import numpy as np
import polars as pl

from alevor_assets.lib.validation import InsufficientDataError


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
    name = kind if isinstance(kind, str) else getattr(kind, "__name__", "")
    name = name.replace(" ", "")
    if name.endswith("|None"):  # optional: None passes, anything else is coerced to the type
        name = name[: -len("|None")]
    # Other unions (e.g. ``float | str``) pass through; the trainer's __post_init__ checks them.
    target = kinds.get(name)
    if target is None or value is None:
        return value
    if target is bool and not isinstance(value, bool):
        raise ValueError(f"hyperparameter {key!r} must be true or false, got {value!r}")
    if target in (int, float) and isinstance(value, bool):
        raise ValueError(f"hyperparameter {key!r} must be {target.__name__}, got {value!r}")
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
            raise InsufficientDataError(f"training data has a single class {self._classes}; nothing to learn yet")
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


# ---------------------------------------------------------------------------------------------
# scikit-learn trainers, saved with skops
# ---------------------------------------------------------------------------------------------
#
# Every scikit-learn trainer fits a Pipeline(SimpleImputer(median), StandardScaler(), model) (no
# scaler for forests) on the feature columns in the order the training frame gave them; the order
# is stored with the model and prediction selects the same columns. Classification labels are
# mapped to 0..k-1 in sorted order (like the XGBoost classifier), so multi-class probability
# columns follow the sorted class values and a binary score is the probability of the larger one.
# Non-finite feature values (NaN, null, ±inf) count as missing and are imputed.

#: A skops artifact may only hold types from these modules (besides the plain containers and
#: scalars skops trusts by itself: dict, list, tuple, str, int, float, None, OrderedDict, ...).
SKOPS_TRUSTED_PREFIXES: tuple[str, ...] = ("sklearn.", "numpy.", "scipy.")
#: Exact builtins allowed on top of skops' own defaults. skops 0.16 reports none for the
#: pipelines below (it trusts the containers and scalars they hold), so this stays empty; add a
#: name here only after checking what ``skops.io.get_untrusted_types`` reports and why.
SKOPS_TRUSTED_BUILTINS: frozenset[str] = frozenset()

_SKOPS_FORMAT = "alevor.sklearn/1"


def _skops_type_allowed(name: str) -> bool:
    """An allowlisted module prefix, and the name must resolve to a class: skops can also call a
    named *function* as a constructor, so ``numpy.load`` or ``scipy.io.loadmat`` would otherwise
    pass the prefix test. ``numpy.memmap`` (opens or creates files) is refused as well."""
    if name in SKOPS_TRUSTED_BUILTINS:
        return True
    if not name.startswith(SKOPS_TRUSTED_PREFIXES):
        return False
    module, _, attr = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError, TypeError):
        return False
    return isinstance(obj, type) and not issubclass(obj, np.memmap)


def check_skops_file(path: Path) -> list[str]:
    """The types in a skops file that skops does not trust by default, after checking each one
    against the allowlist; raises ``ValueError`` naming the refused ones."""
    import skops.io as sio

    untrusted = [str(t) for t in sio.get_untrusted_types(file=path)]
    refused = sorted(t for t in untrusted if not _skops_type_allowed(t))
    if refused:
        raise ValueError(
            f"{path}: refusing to load a skops artifact holding type(s) outside the allowlist "
            f"(classes from {', '.join(SKOPS_TRUSTED_PREFIXES)} modules, builtins "
            f"{sorted(SKOPS_TRUSTED_BUILTINS)}): {refused}"
        )
    return untrusted


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
        yt = np.asarray(y_train).astype(np.int64)
        yv = np.asarray(y_val).astype(np.int64)
        classes = np.unique(np.concatenate([yt, yv]))
        self._classes = [int(c) for c in classes]
        if len(classes) < 2:
            raise InsufficientDataError(f"training data has a single class {self._classes}; nothing to learn yet")
        absent = sorted(set(self._classes) - {int(c) for c in np.unique(yt)})
        if absent:
            raise ValueError(
                f"{self.name}: class(es) {absent} occur only in the validation fold; the training fold "
                "needs every class"
            )
        return np.searchsorted(classes, yt), np.searchsorted(classes, yv)

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
        info: dict[str, Any] = {"features": list(getattr(self, "_features", []))}
        if self.task == "classification":
            info["classes"] = getattr(self, "_classes", None)
        return {**info, **getattr(self, "_info", {})}

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


# -- random forests ------------------------------------------------------------------------------


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
    threads = _threads()
    if threads == 1 or len(z) < 2 * min_rows:
        return fn(z)
    from concurrent.futures import ThreadPoolExecutor

    bounds = np.linspace(0, len(z), min(threads, len(z) // min_rows) + 1).astype(int)
    with ThreadPoolExecutor(len(bounds) - 1) as pool:
        parts = list(pool.map(lambda ab: fn(z[ab[0] : ab[1]]), zip(bounds[:-1], bounds[1:])))
    return np.concatenate(parts)


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
            n_jobs=_threads(),
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

    def fit(self, x_train, y_train, w_train, x_val, y_val, w_val):
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

    def fit(self, x_train, y_train, w_train, x_val, y_val, w_val):
        from sklearn.ensemble import RandomForestRegressor

        xt, _ = self._start(x_train, x_val)
        yt = np.asarray(y_train, dtype=np.float64)
        self._model = _pipeline(RandomForestRegressor(**self._forest_params()), scale=False)
        self._model.fit(xt, yt, model__sample_weight=self._weights(w_train, len(yt)))


# -- linear models -------------------------------------------------------------------------------


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

    def fit(self, x_train, y_train, w_train, x_val, y_val, w_val):
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

    def fit(self, x_train, y_train, w_train, x_val, y_val, w_val):
        from sklearn.linear_model import Ridge

        xt, _ = self._start(x_train, x_val)
        yt = np.asarray(y_train, dtype=np.float64)
        self._model = _pipeline(Ridge(alpha=self.alpha))
        self._model.fit(xt, yt, model__sample_weight=self._weights(w_train, len(yt)))

    def _importances(self) -> np.ndarray:
        return _coef_importance(self._final_estimator().coef_)


# -- linear SVMs ---------------------------------------------------------------------------------


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

    def fit(self, x_train, y_train, w_train, x_val, y_val, w_val):
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.frozen import FrozenEstimator
        from sklearn.svm import LinearSVC

        xt, xv = self._start(x_train, x_val)
        yt, yv = self._encode(y_train, y_val)
        absent = sorted(set(range(len(self._classes))) - set(np.unique(yv).tolist()))
        if absent:
            names = [self._classes[i] for i in absent]
            raise ValueError(
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

    def fit(self, x_train, y_train, w_train, x_val, y_val, w_val):
        from sklearn.svm import LinearSVR

        xt, _ = self._start(x_train, x_val)
        yt = np.asarray(y_train, dtype=np.float64)
        svr = LinearSVR(C=self.C, epsilon=self.epsilon, max_iter=self.max_iter, random_state=self.seed)
        self._model = _pipeline(svr)
        with _recording_convergence(self._info):
            self._model.fit(xt, yt, model__sample_weight=self._weights(w_train, len(yt)))

    def _importances(self) -> np.ndarray:
        return _coef_importance(self._final_estimator().coef_)


# -- multi-layer perceptrons -----------------------------------------------------------------------


def _layer_sizes(value: Any) -> str:
    """``"64,32"``, ``"64"``, ``[64, 32]`` or ``64`` -> ``"64,32"`` (kept as text so the params
    stay plain JSON); every size a positive integer."""
    if isinstance(value, str):
        parts: list[Any] = [p.strip() for p in value.strip().strip("[]()").split(",") if p.strip()]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        parts = [value]
    else:
        parts = []
    sizes = []
    for p in parts:
        try:
            if isinstance(p, bool):
                raise ValueError
            n = int(p) if not isinstance(p, float) or p.is_integer() else None
        except (TypeError, ValueError):
            n = None
        if n is None or n < 1:
            sizes = []
            break
        sizes.append(n)
    if not sizes:
        raise ValueError(
            f"hyperparameter 'hidden_layer_sizes' must be positive integers like \"64,32\" or [64, 32], "
            f"got {value!r}"
        )
    return ",".join(str(n) for n in sizes)


@dataclass
class _MLPBase(_SklearnTrainer):
    hidden_layer_sizes: str | list[int] = "64,32"
    learning_rate_init: float = 1e-3
    alpha: float = 1e-4
    max_epochs: int = 200
    patience: int = 10
    batch_size: int = 256
    seed: int = 42

    def __post_init__(self) -> None:
        self.hidden_layer_sizes = _layer_sizes(self.hidden_layer_sizes)
        _positive_float("learning_rate_init", self.learning_rate_init)
        _positive_float("alpha", self.alpha, allow_zero=True)
        _positive_int("max_epochs", self.max_epochs)
        _positive_int("patience", self.patience)
        _positive_int("batch_size", self.batch_size)

    def _estimator_params(self, n_rows: int) -> dict[str, Any]:
        return dict(
            hidden_layer_sizes=tuple(int(n) for n in str(self.hidden_layer_sizes).split(",")),
            solver="adam",
            alpha=self.alpha,
            learning_rate_init=self.learning_rate_init,
            batch_size=min(self.batch_size, n_rows),
            shuffle=True,  # partial_fit reshuffles every epoch from random_state
            random_state=self.seed,
        )

    def _preprocess(self, xt: np.ndarray, xv: np.ndarray) -> tuple[Any, Any, np.ndarray, np.ndarray]:
        from sklearn.preprocessing import StandardScaler

        imputer = _imputer().fit(xt)
        scaler = StandardScaler().fit(imputer.transform(xt))
        return imputer, scaler, scaler.transform(imputer.transform(xt)), scaler.transform(imputer.transform(xv))

    def _train_epochs(self, est: Any, zt, yt, wt, val_loss, **partial_kwargs) -> None:
        """One ``partial_fit`` pass per epoch; after each, the loss on our validation fold. Keep
        the best epoch's weights; stop after ``patience`` epochs without improvement."""
        best_loss, best_epoch, best_params, stale, epoch = np.inf, 0, None, 0, 0
        for epoch in range(1, self.max_epochs + 1):
            est.partial_fit(zt, yt, sample_weight=wt, **partial_kwargs)
            loss = float(val_loss(est))
            if loss < best_loss:  # NaN never improves
                best_loss, best_epoch, stale = loss, epoch, 0
                best_params = ([c.copy() for c in est.coefs_], [b.copy() for b in est.intercepts_])
            else:
                stale += 1
                if stale >= self.patience:
                    break
        if best_params is None:
            raise ValueError(f"{self.name}: the validation loss was never finite; lower learning_rate_init")
        est.coefs_, est.intercepts_ = best_params
        if hasattr(est, "_optimizer"):
            del est._optimizer  # Adam's moment estimates: only needed to keep training
        self._info.update(
            best_epoch=best_epoch,
            epochs_run=epoch,
            stopped_early=epoch < self.max_epochs,
            best_validation_loss=best_loss,
        )

    def _assemble(self, imputer: Any, scaler: Any, est: Any) -> Any:
        from sklearn.pipeline import Pipeline

        return Pipeline([("impute", imputer), ("scale", scaler), ("model", est)])


@register_trainer
@dataclass
class MLPClassifierTrainer(_MLPBase):
    """Multi-layer perceptron (ReLU, Adam, L2 ``alpha``) on median-imputed, standardized
    features, trained one epoch at a time with early stopping on the validation fold's log loss
    (best epoch's weights kept; ``best_epoch`` in fit_info). Class balance: scikit-learn's MLP
    accepts sample weights, so rows are weighted ``row weight × n / (k · class count)`` in
    training and in the validation loss (no oversampling, nothing crosses folds). No importance."""

    name: ClassVar[str] = "mlp_classifier"
    task: ClassVar[str] = "classification"
    balance_classes: bool = True

    def fit(self, x_train, y_train, w_train, x_val, y_val, w_val):
        from sklearn.metrics import log_loss
        from sklearn.neural_network import MLPClassifier

        xt, xv = self._start(x_train, x_val)
        yt, yv = self._encode(y_train, y_val)
        k = len(self._classes)
        wt = self._weights(w_train, len(yt))
        wv = self._weights(w_val, len(yv))
        if self.balance_classes:
            wt, wv = wt * _balanced(yt, k), wv * _balanced(yv, k)
        imputer, scaler, zt, zv = self._preprocess(xt, xv)
        est = MLPClassifier(**self._estimator_params(len(yt)))
        labels = np.arange(k)

        def val_loss(m: Any) -> float:
            return log_loss(yv, m.predict_proba(zv), labels=labels, sample_weight=wv)

        self._train_epochs(est, zt, yt, wt, val_loss, classes=labels)
        self._model = self._assemble(imputer, scaler, est)


@register_trainer
@dataclass
class MLPRegressorTrainer(_MLPBase):
    """Multi-layer perceptron regression (squared error) on median-imputed, standardized
    features and a standardized target (mean/scale stored with the model, undone at prediction),
    trained one epoch at a time with early stopping on the validation fold's weighted MSE (best
    epoch's weights kept; ``best_epoch`` in fit_info). No importance."""

    name: ClassVar[str] = "mlp_regressor"
    task: ClassVar[str] = "regression"

    def fit(self, x_train, y_train, w_train, x_val, y_val, w_val):
        from sklearn.metrics import mean_squared_error
        from sklearn.neural_network import MLPRegressor

        xt, xv = self._start(x_train, x_val)
        yt = np.asarray(y_train, dtype=np.float64)
        yv = np.asarray(y_val, dtype=np.float64)
        mean, scale = float(np.mean(yt)), float(np.std(yt))
        scale = scale if scale > 0 and np.isfinite(scale) else 1.0
        self._info.update(target_mean=mean, target_scale=scale)
        st, sv = (yt - mean) / scale, (yv - mean) / scale
        wt = self._weights(w_train, len(yt))
        wv = self._weights(w_val, len(yv))
        imputer, scaler, zt, zv = self._preprocess(xt, xv)
        est = MLPRegressor(**self._estimator_params(len(yt)))

        def val_loss(m: Any) -> float:
            return mean_squared_error(sv, m.predict(zv), sample_weight=wv)

        self._train_epochs(est, zt, st, wt, val_loss)
        self._model = self._assemble(imputer, scaler, est)

    def predict_score(self, x: pl.DataFrame) -> np.ndarray:
        scaled = np.asarray(self._model.predict(self._matrix(x)), dtype=np.float64)
        return scaled * self._info["target_scale"] + self._info["target_mean"]
