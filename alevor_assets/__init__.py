"""Alevor: a declarative Dagster pipeline from raw trades to validated trading models.

The notebook API (Polars in, Polars out, no Dagster needed)::

    from alevor_assets import resample_trades, compute_features, score
    bars = resample_trades(trades, "2s")
    features = compute_features(bars, "2s")
    predictions = score("pump_detector_2s", bars, trades=trades)   # the promoted model's scores
"""

import os

# Several runs share the machine's cores (max_concurrent_runs in dagster.yaml). OpenMP threads that
# spin while waiting (libgomp's default, used by XGBoost) make concurrent trainings 5-10x slower
# than running them one after another; passive waiting costs nothing when a run is alone.
# Set before XGBoost loads its OpenMP runtime; an explicit OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from alevor_assets.lib.bars import resample_trades, time_bars  # noqa: E402
from alevor_assets.lib.features import adjust_features_for_time_interval, compute_features  # noqa: E402
from alevor_assets.lib.labels import (  # noqa: E402
    LabelContext,
    LabelStrategy,
    label_strategies,
    make_label_strategy,
    register_label_strategy,
)
from alevor_assets.lib.fallback import FallbackRule, register_fallback_rule  # noqa: E402
from alevor_assets.lib.serving import ServingModel, load_serving_model, score  # noqa: E402
from alevor_assets.lib.training import Trainer, make_trainer, register_trainer, trainers  # noqa: E402

__all__ = [
    "FallbackRule",
    "LabelContext",
    "LabelStrategy",
    "ServingModel",
    "Trainer",
    "adjust_features_for_time_interval",
    "compute_features",
    "label_strategies",
    "load_serving_model",
    "make_label_strategy",
    "make_trainer",
    "register_fallback_rule",
    "register_label_strategy",
    "register_trainer",
    "resample_trades",
    "score",
    "time_bars",
    "trainers",
]
