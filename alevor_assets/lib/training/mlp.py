"""Multi-layer perceptrons (``mlp_classifier``, ``mlp_regressor``), trained one epoch at a time
with early stopping on the validation fold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl

from alevor_assets.lib.training.base import register_trainer
from alevor_assets.lib.training.sklearn_base import (
    _balanced,
    _imputer,
    _positive_float,
    _positive_int,
    _SklearnTrainer,
)


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

    def fit(self, x_train: pl.DataFrame, y_train: np.ndarray, w_train: np.ndarray,
            x_val: pl.DataFrame, y_val: np.ndarray, w_val: np.ndarray) -> None:
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

    def fit(self, x_train: pl.DataFrame, y_train: np.ndarray, w_train: np.ndarray,
            x_val: pl.DataFrame, y_val: np.ndarray, w_val: np.ndarray) -> None:
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
