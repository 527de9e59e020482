"""Every zoo trainer trains through a spec file on small data (split, early stopping, threshold,
test-fold metrics with the backtest, walk-forward), and the shipped direction specs differ only in
their trainer, so they are compared on the same test fold."""

import dataclasses
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from alevor_assets.lib.modeling import evaluate, train, walk_forward
from alevor_assets.lib.specs import SPECS_DIR, load_spec
from alevor_assets.lib.training import make_trainer

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
SEQUENCE = "{sequence_length: 6, max_epochs: 8, patience: 3, batch_size: 64, learning_rate: 0.005}"
ZOO = {
    "lightgbm_classifier": "{n_estimators: 80, num_leaves: 15, early_stopping_rounds: 15}",
    "lightgbm_regressor": "{n_estimators: 80, num_leaves: 15, early_stopping_rounds: 15}",
    "catboost_classifier": "{iterations: 80, depth: 4, early_stopping_rounds: 15}",
    "catboost_regressor": "{iterations: 80, depth: 4, early_stopping_rounds: 15}",
    "lstm_classifier": SEQUENCE,
    "lstm_regressor": SEQUENCE,
    "transformer_classifier": SEQUENCE,
    "transformer_regressor": SEQUENCE,
}


def _rows(tokens=4, hours=200, seed=2):
    """Hourly rows; the 4 h forward return follows the sum of the last three bars' ``flow``
    (a signal a sequence sees whole) plus the bar's own ``tilt``."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(tokens):
        flow, tilt = rng.normal(size=hours), rng.normal(size=hours)
        recent = flow + np.r_[0, flow[:-1]] + np.r_[0, 0, flow[:-2]]
        ret = 0.01 * (0.6 * recent + 0.6 * tilt + 0.5 * rng.normal(size=hours))
        ts = [T0 + timedelta(hours=h) for h in range(hours)]
        out.append(pl.DataFrame({
            "token": f"T{k}", "interval": "1h", "ts": ts, "spec": "zoo", "flow": flow, "tilt": tilt,
            "noise": rng.normal(size=hours), "realized_return": ret, "weight": 1.0,
            "horizon_end": [t + timedelta(hours=4) for t in ts],
        }))
    return pl.concat(out).with_columns(pl.col("ts", "horizon_end").dt.cast_time_unit("us"))


def _spec_file(tmp_path: Path, trainer: str) -> Path:
    classification = trainer.endswith("classifier")
    label = "{strategy: direction, params: {horizon: 4h}}" if classification else \
        "{strategy: forward_return, params: {horizon: 4h}}"
    path = tmp_path / f"zoo_{trainer}.yaml"
    path.write_text(
        f"name: zoo_{trainer}\ninterval: 1h\nlabel: {label}\ntrainer: {{name: {trainer}, params: {ZOO[trainer]}}}\n"
        "split: {embargo: 4h}\nvalidation: {walk_forward_folds: 2}\n"
        "backtest: {fee_bps: 1, slippage_bps: 0, sides: long_short}\n"
        f"primary_metric: {'roc_auc' if classification else 'ic'}\n"
    )
    return path


@pytest.mark.parametrize("trainer", sorted(ZOO))
def test_each_zoo_trainer_trains_through_a_spec_file(trainer, tmp_path):
    spec = load_spec(_spec_file(tmp_path, trainer))
    rows = _rows()
    if spec.task == "classification":
        rows = rows.with_columns((pl.col("realized_return") > 0).cast(pl.Int64).alias("label"))
    else:
        rows = rows.with_columns(pl.col("realized_return").alias("label"))
    result = train(spec, rows, make_trainer(spec.trainer.name, spec.trainer.params))
    classes = result.trainer.fit_info().get("classes")
    ev = evaluate(spec, result.trainer, result.split.test.rows, result.features, result.threshold, classes)
    assert ev.score.shape == (result.split.test.height,) and np.isfinite(ev.score).all()
    assert ev.metrics["trades"] > 0 and ev.metrics["profit_factor"] > 1.0
    assert ev.metrics[spec.primary_metric] > (0.65 if spec.task == "classification" else 0.3)
    walk = walk_forward(spec, rows, result.features, lambda: make_trainer(spec.trainer.name, spec.trainer.params))
    assert len(walk["folds"]) == 2 and all("skipped" not in f for f in walk["folds"]), walk
    assert walk["mean"] is not None


def test_a_sequence_model_uses_the_bars_before_the_row():
    """The signal spans the last three bars: the LSTM ranks better than a one-bar window of itself."""
    rows = _rows().with_columns((pl.col("realized_return") > 0).cast(pl.Int64).alias("label")).drop("tilt")
    spec = load_spec(SPECS_DIR / "direction_lstm_1h.yaml")
    spec = dataclasses.replace(spec, features_exclude=())
    auc = {}
    for length in (1, 6):
        trainer = make_trainer("lstm_classifier", {"sequence_length": length, "max_epochs": 15, "learning_rate": 0.005})
        result = train(spec, rows, trainer)
        auc[length] = evaluate(spec, trainer, result.split.test.rows, result.features, result.threshold,
                               trainer.fit_info()["classes"]).metrics["roc_auc"]
    assert auc[6] > auc[1] + 0.05, auc


def test_the_shipped_direction_specs_differ_only_in_their_trainer():
    xgb, lstm, transformer = (load_spec(SPECS_DIR / f"direction_{k}_1h.yaml") for k in ("classifier", "lstm", "transformer"))
    assert (lstm.trainer.name, transformer.trainer.name) == ("lstm_classifier", "transformer_classifier")

    def same(spec):
        return dataclasses.replace(spec, name="", description="", trainer=None, path="")

    assert same(lstm) == same(xgb) == same(transformer)
    for spec in (lstm, transformer):
        make_trainer(spec.trainer.name, spec.trainer.params)  # typed hyperparameters load
