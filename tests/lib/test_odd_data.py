"""Small and odd data never crash a spec: a class missing from a fold, too few events."""

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from alevor_assets.defs.resources import AlevorStorage
from alevor_assets.lib.lifecycle import train_version
from alevor_assets.lib.modeling import train, walk_forward
from alevor_assets.lib.schemas import UTC_US
from alevor_assets.lib.specs import model_specs
from alevor_assets.lib.training import make_trainer
from alevor_assets.lib.validation import InsufficientDataError

REGIME = replace(next(s for s in model_specs() if s.name == "regime_classifier_5m"), walk_forward_folds=0,
                 split=replace(next(s for s in model_specs() if s.name == "regime_classifier_5m").split, embargo="0s"))
_PUMP = next(s for s in model_specs() if s.name == "pump_detector_2s")
PUMP = replace(_PUMP, walk_forward_folds=0, split=replace(_PUMP.split, embargo="0s"))
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
XGB = {"n_estimators": 20, "max_depth": 2, "early_stopping_rounds": 5}


def rows_with_labels(labels: list[int], step: timedelta, spec_name: str, tokens: tuple[str, ...] = ("T",)) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    n = len(labels)
    ts = [T0 + k * step for k in range(n) for _ in tokens]
    y = [lab for lab in labels for _ in tokens]
    return pl.DataFrame({
        "token": [t for _ in range(n) for t in tokens], "interval": "x", "ts": ts, "spec": spec_name,
        "f1": rng.normal(size=len(ts)) + np.array(y), "f2": rng.normal(size=len(ts)),
        "label": y, "weight": 1.0, "horizon_end": [t + step for t in ts],
    }).with_columns(pl.col("ts", "horizon_end").cast(UTC_US), pl.col("label").cast(pl.Int64))


def test_xgboost_names_a_class_seen_only_in_validation_instead_of_crashing():
    trainer = make_trainer("xgboost_classifier", XGB)
    x = pl.DataFrame({"f": np.arange(40.0)})
    with pytest.raises(InsufficientDataError, match=r"class\(es\) \[0\] occur only in the validation rows"):
        trainer.fit(x.head(30), np.array([1, 2] * 15), np.ones(30), x.tail(10), np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0]), np.ones(10))


def test_no_trade_only_in_the_validation_fold_is_a_recorded_skip_not_a_stack_trace(tmp_path):
    # 100 five-minute rows: RANGE/TREND throughout, NO_TRADE (0) only in rows 72-80 (validation).
    labels = [1 + k % 2 for k in range(100)]
    labels[72:80] = [0] * 8
    rows = rows_with_labels(labels, timedelta(minutes=5), REGIME.name)
    with pytest.raises(InsufficientDataError, match=r"regime_classifier_5m: class\(es\) 0 \(8 rows\) occur in the validation fold"):
        train(REGIME, rows, make_trainer("xgboost_classifier", XGB))
    # Through the lifecycle: the model asset records why and trains nothing.
    storage = AlevorStorage(home=str(tmp_path / "home"))
    for day, part in rows.with_columns(pl.col("ts").dt.date().alias("d")).group_by("d"):
        storage.warehouse.write_partition(REGIME.training_set_asset, day[0], part.drop("d"))
    spec = replace(REGIME, trainer=replace(REGIME.trainer, params=XGB), window_end=date(2024, 1, 1))
    trained = train_version(spec, storage.warehouse, storage.registry)
    assert trained.version is None and "class(es) 0 (8 rows) occur in the validation fold" in trained.skipped
    assert storage.registry.latest(REGIME.name) is None


def test_a_walk_forward_fold_whose_training_lacks_a_class_is_skipped_with_the_reason():
    labels = [1 + k % 2 for k in range(200)]
    labels[100:200:3] = [0] * len(labels[100:200:3])  # NO_TRADE appears only from row 100 on
    rows = rows_with_labels(labels, timedelta(minutes=5), REGIME.name)
    spec = replace(REGIME, walk_forward_folds=2)
    walk = walk_forward(spec, rows, ["f1", "f2"], lambda: make_trainer("xgboost_classifier", XGB))
    first, second = walk["folds"]
    assert "class(es) 0" in first["skipped"] and "occur in the fold's validation or test rows" in first["skipped"]
    # Fold 0 trains on rows 0-59 (no NO_TRADE) and tests rows 60-129; fold 1 trains on rows that have it.
    assert "skipped" not in second and second["accuracy"] is not None and second["test_rows"] == 70


def test_a_detector_whose_test_fold_holds_no_event_is_skipped():
    step = timedelta(seconds=2)
    labels = [0] * 300
    labels[50:60] = [1] * 10  # one pump, early: the test fold (last 15%) has none
    rows = rows_with_labels(labels, step, PUMP.name, tokens=("A", "B"))
    events = pl.DataFrame({"token": ["A"], "type": ["pump"], "start_time": [T0 + 50 * step], "end_time": [T0 + 60 * step]},
                          schema={"token": pl.Utf8, "type": pl.Utf8, "start_time": UTC_US, "end_time": UTC_US})
    trainer = make_trainer("xgboost_classifier", XGB)
    with pytest.raises(InsufficientDataError, match="the test fold .* holds no labelled event that moved the price"):
        train(PUMP, rows, trainer, events)
    with pytest.raises(InsufficientDataError, match="the test fold"):
        train(PUMP, rows, trainer, None)  # no events at all
