"""Alevor: a declarative Dagster pipeline from raw trades to validated trading models.

The notebook API (Polars in, Polars out, no Dagster needed)::

    from alevor_assets import resample_trades, compute_features
    bars = resample_trades(trades, "2s")
    features = compute_features(bars, "2s")
"""

from alevor_assets.lib.bars import resample_trades, time_bars
from alevor_assets.lib.features import adjust_features_for_time_interval, compute_features
from alevor_assets.lib.labels import (
    LabelContext,
    LabelStrategy,
    label_strategies,
    make_label_strategy,
    register_label_strategy,
)
from alevor_assets.lib.training import Trainer, make_trainer, register_trainer, trainers

__all__ = [
    "LabelContext",
    "LabelStrategy",
    "Trainer",
    "adjust_features_for_time_interval",
    "compute_features",
    "label_strategies",
    "make_label_strategy",
    "make_trainer",
    "register_label_strategy",
    "register_trainer",
    "resample_trades",
    "time_bars",
    "trainers",
]
