"""The trainer interface and the registry of trainers.

``make_trainer`` coerces a spec's values to each field's declared type (``int``, ``float``,
``bool``, ``str``, optionally ``| None``), so a wrong type fails when the spec loads.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import polars as pl

from alevor_assets.lib.plugins import Registry
from alevor_assets.lib.validation import InsufficientDataError


#: The key columns a ``needs_keys`` trainer receives next to the features.
SEQUENCE_KEYS: tuple[str, ...] = ("token", "ts")


def input_frame(trainer: "Trainer", rows: pl.DataFrame, features: list[str]) -> pl.DataFrame:
    """What ``trainer`` scores or fits on: the features as Float64, preceded by ``token`` and
    ``ts`` for trainers that need them."""
    keys = [pl.col(k) for k in SEQUENCE_KEYS] if trainer.needs_keys else []
    return rows.select([*keys, *(pl.col(f).cast(pl.Float64) for f in features)])


def encode_classes(name: str, y_train: np.ndarray, y_val: np.ndarray) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Sorted class values and both folds' labels mapped to 0..k-1; every class must be in training."""
    yt, yv = np.asarray(y_train).astype(np.int64), np.asarray(y_val).astype(np.int64)
    classes = np.unique(np.concatenate([yt, yv]))
    values = [int(c) for c in classes]
    if len(classes) < 2:
        raise InsufficientDataError(f"training data has a single class {values}; nothing to learn yet")
    absent = sorted(set(values) - {int(c) for c in np.unique(yt)})
    if absent:
        raise InsufficientDataError(
            f"{name}: class(es) {absent} occur only in the validation fold; the training fold needs every class"
        )
    return values, np.searchsorted(classes, yt), np.searchsorted(classes, yv)


def recorded_fit_info(trainer: "Trainer") -> dict[str, Any]:
    """The features a trainer was fitted on, its classes (classifiers) and what its fit recorded in
    ``_info``: the ``fit_info`` of trainers that keep those three attributes."""
    info: dict[str, Any] = {"features": list(getattr(trainer, "_features", []))}
    if trainer.task == "classification":
        info["classes"] = getattr(trainer, "_classes", None)
    return {**info, **getattr(trainer, "_info", {})}


class Trainer:
    """Base class for trainers; subclasses are dataclasses registered with ``@register_trainer``."""

    name: ClassVar[str]
    task: ClassVar[str]  # "classification" or "regression"
    artifact_file: ClassVar[str] = "model.bin"
    #: Sequence models set this: their ``x_*`` frames then also hold ``token`` and ``ts``
    #: (:data:`SEQUENCE_KEYS`) so they can build each row's window of past bars.
    needs_keys: ClassVar[bool] = False
    # Fits of separate instances share no state (no global random generator, no global config),
    # so walk-forward folds may train at once in threads (lib/modeling.py); off unless shown.
    independent_fits: ClassVar[bool] = False

    def fit(self, x_train: pl.DataFrame, y_train: np.ndarray, w_train: np.ndarray,
            x_val: pl.DataFrame, y_val: np.ndarray, w_val: np.ndarray) -> None:  # pragma: no cover - interface
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

    def contributions(self, x: pl.DataFrame) -> np.ndarray | None:
        """Per row, each feature's contribution to its score (``n × features``; for multi-class
        models, to the most likely class), or ``None`` when the model cannot say."""
        return None

    def feature_importance(self) -> dict[str, float]:
        return {}

    def fit_info(self) -> dict[str, Any]:
        """Facts about the fit worth recording (best iteration, classes, ...)."""
        return {}

    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}


def _coerce(key: str, value: Any, kind: Any) -> Any:
    # ``kind`` is the field's annotation: text such as ``"int | None"`` in modules that postpone
    # annotations (``from __future__ import annotations``, as every trainer module here does).
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


_TRAINERS: Registry[Trainer] = Registry("trainer", "hyperparameter", coerce=_coerce)
T = TypeVar("T", bound=type[Trainer])


def register_trainer(cls: T) -> T:
    """Class decorator: make a trainer available to model specs under ``cls.name``."""
    return _TRAINERS.register(cls)


def trainers() -> dict[str, type[Trainer]]:
    return _TRAINERS.all()


def make_trainer(name: str, params: dict[str, Any] | None = None) -> Trainer:
    return _TRAINERS.make(name, params)

