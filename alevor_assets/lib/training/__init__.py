"""Trainers: pluggable model families, registered by name, with typed hyperparameters.

A trainer is a dataclass whose fields are its hyperparameters. It fits on the training fold (with
early stopping on the validation fold where the algorithm has it), scores new rows, and saves its
model in a format that cannot execute code when loaded: XGBoost's UBJSON for the XGBoost trainers,
skops (checked against a type allowlist before loading) for the scikit-learn ones, LightGBM text,
CatBoost JSON, and safetensors for the PyTorch ones; never pickle. PyTorch, LightGBM and CatBoost
are imported only when such a trainer fits or loads.
Add your own with ``@register_trainer``; the README shows a complete example.

Registered here: ``xgboost_classifier``, ``xgboost_regressor``, ``random_forest_classifier``,
``random_forest_regressor``, ``logistic_regression``, ``linear_regression`` (ridge),
``mlp_classifier``, ``mlp_regressor``, ``svm_classifier`` (linear, Platt-calibrated) and
``svm_regressor`` (linear), ``lightgbm_classifier``, ``lightgbm_regressor``,
``catboost_classifier``, ``catboost_regressor`` and the PyTorch sequence models
``lstm_classifier``, ``lstm_regressor``, ``transformer_classifier``, ``transformer_regressor``.

Where things are:

- ``base``: the ``Trainer`` interface and the registry (with the hyperparameter type coercion);
- ``boosting``: the XGBoost trainers; ``leafwise``: LightGBM (text model); ``oblivious``: CatBoost
  (JSON model);
- ``sequences``: each row's window of past bars (never across folds, tokens or gaps);
  ``sequence_models``: the LSTM and Transformer trainers; ``torch_nets``: their allowlisted
  architectures; ``torch_io``: safetensors save and checked load;
- ``skops_io``: the type allowlist every scikit-learn artifact is checked against before loading;
- ``sklearn_base``: what the scikit-learn trainers share (pipeline, label encoding, skops save and
  load);
- ``forest``, ``linear``, ``svm``, ``mlp``: one module per scikit-learn family.

Importing this package imports every trainer module, which registers the built-in trainers. No
module is named after the library it wraps, so ``import xgboost`` or ``import sklearn`` always
means the library.
"""

from alevor_assets.lib.training.base import Trainer, make_trainer, register_trainer, trainers
from alevor_assets.lib.training.boosting import XGBoostClassifier, XGBoostRegressor
from alevor_assets.lib.training.forest import RandomForestClassifierTrainer, RandomForestRegressorTrainer
from alevor_assets.lib.training.linear import LinearRegressionTrainer, LogisticRegressionTrainer
from alevor_assets.lib.training.svm import SVMClassifierTrainer, SVMRegressorTrainer
from alevor_assets.lib.training.mlp import MLPClassifierTrainer, MLPRegressorTrainer
from alevor_assets.lib.training.leafwise import LightGBMClassifier, LightGBMRegressor
from alevor_assets.lib.training.oblivious import CatBoostClassifierTrainer, CatBoostRegressorTrainer
from alevor_assets.lib.training.sequence_models import (
    LSTMClassifierTrainer,
    LSTMRegressorTrainer,
    TransformerClassifierTrainer,
    TransformerRegressorTrainer,
)
from alevor_assets.lib.training.skops_io import SKOPS_TRUSTED_BUILTINS, SKOPS_TRUSTED_PREFIXES, check_skops_file

__all__ = [
    "CatBoostClassifierTrainer",
    "CatBoostRegressorTrainer",
    "LightGBMClassifier",
    "LightGBMRegressor",
    "LSTMClassifierTrainer",
    "LSTMRegressorTrainer",
    "TransformerClassifierTrainer",
    "TransformerRegressorTrainer",
    "SKOPS_TRUSTED_BUILTINS",
    "SKOPS_TRUSTED_PREFIXES",
    "LinearRegressionTrainer",
    "LogisticRegressionTrainer",
    "MLPClassifierTrainer",
    "MLPRegressorTrainer",
    "RandomForestClassifierTrainer",
    "RandomForestRegressorTrainer",
    "SVMClassifierTrainer",
    "SVMRegressorTrainer",
    "Trainer",
    "XGBoostClassifier",
    "XGBoostRegressor",
    "check_skops_file",
    "make_trainer",
    "register_trainer",
    "trainers",
]
