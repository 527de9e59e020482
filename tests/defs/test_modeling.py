"""Model specs through the real assets: gates, promotion, tampering, your own strategy and trainer."""

import json
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl
import pytest

from alevor_assets import LabelStrategy, Trainer, register_label_strategy, register_trainer
from alevor_assets.defs.modeling.assets import build_specs_assets
from alevor_assets.lib.specs import load_spec
from tests.conftest import START, small_settings, small_source
from tests.helpers import DATA_ASSETS, PUMP_SPEC, materialize_range

LAST = START + timedelta(days=2)
UPSTREAM = DATA_ASSETS[:-2]  # everything before labels / training_set


@pytest.fixture
def resources(storage):
    return {"storage": storage, "settings": small_settings(), "source": small_source()}


def _run(specs, resources, instance, first=START, last=LAST):
    result = materialize_range(first, last, resources=resources, instance=instance, assets=[*UPSTREAM, *build_specs_assets(specs)])
    assert result.success
    return result


def test_a_model_that_fails_its_gate_is_not_promoted_and_a_tampered_incumbent_is_refused(resources, instance, storage):
    spec = replace(PUMP_SPEC, walk_forward_folds=0)
    _run([spec], resources, instance)
    registry = storage.registry
    assert registry.promoted(spec.name)["version"] == 1
    impossible = replace(spec, gate={"min_pr_auc": 1.01})
    _run([impossible], resources, instance, LAST, LAST)
    statuses = dict(zip(registry.list_models()["version"], registry.list_models()["status"]))
    assert statuses == {1: "promoted", 2: "rejected"}
    report = (storage.root / "models" / spec.name / "v2" / "report.md").read_text()
    assert "gate failed (pr_auc >= 1.01)" in report and "The promoted version stays" in report
    # Flip a byte in the promoted artifact: it can no longer be loaded or compared against.
    artifact = Path(registry.promoted(spec.name)["artifact_path"])
    data = bytearray(artifact.read_bytes())
    data[100] ^= 0x01
    artifact.write_bytes(bytes(data))
    result = _run([spec], resources, instance, LAST, LAST)
    decision = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [f"validation_{spec.name}"]][0]
    assert "refusing to load" in decision.materialization.metadata["decision"].value


@register_label_strategy
@dataclass(frozen=True)
class BigMove(LabelStrategy):
    """1 when the next bar's close moves more than `threshold` from this close."""

    name: ClassVar[str] = "test_big_move"
    task: ClassVar[str] = "classification"
    threshold: float = 0.001

    def look_ahead(self, interval):
        return timedelta(minutes=30)

    def compute(self, ctx):
        nxt, when = pl.col("close").shift(-1).over("token"), pl.col("ts").shift(-1).over("token")
        return ctx.bars.select(
            "token", "ts", ((nxt / pl.col("close") - 1).abs() > self.threshold).cast(pl.Int64).alias("label"),
            (when + ctx.step).alias("horizon_end"),
        ).filter(pl.col("horizon_end").is_not_null() & (pl.col("horizon_end") - pl.col("ts") <= timedelta(minutes=30)))


@register_trainer
@dataclass
class NearestCentroid(Trainer):
    """Probability from the distances to each class's mean feature vector; stored as JSON."""

    name: ClassVar[str] = "test_nearest_centroid"
    task: ClassVar[str] = "classification"
    artifact_file: ClassVar[str] = "centroids.json"
    temperature: float = 1.0

    def fit(self, x_train, y_train, w_train, x_val, y_val, w_val):
        x = np.nan_to_num(x_train.to_numpy())
        self._scale = x.std(axis=0) + 1e-12
        self._centroids = {int(c): (x[y_train == c] / self._scale).mean(axis=0).tolist() for c in (0, 1)}

    def predict_score(self, x):
        z = np.nan_to_num(x.to_numpy()) / self._scale
        d = {c: np.linalg.norm(z - np.array(m), axis=1) for c, m in self._centroids.items()}
        return 1.0 / (1.0 + np.exp((d[1] - d[0]) / self.temperature))

    def save(self, directory):
        path = Path(directory) / self.artifact_file
        path.write_text(json.dumps({"scale": self._scale.tolist(), "centroids": self._centroids}))
        return path

    def load(self, path):
        raw = json.loads(Path(path).read_text())
        self._scale, self._centroids = np.array(raw["scale"]), {int(k): v for k, v in raw["centroids"].items()}


def test_your_own_label_strategy_and_trainer_train_through_a_spec_file(tmp_path, resources, instance, storage):
    spec_file = tmp_path / "big_move_1m.yaml"
    spec_file.write_text(
        "name: big_move_1m\ndescription: Does the next 1-minute bar move more than 0.1%?\ninterval: 1m\n"
        "label: {strategy: test_big_move, params: {threshold: 0.001}}\n"
        "trainer: {name: test_nearest_centroid, params: {temperature: 2.0}}\n"
        "features: {include: [return_1, realized_vol_15, volume_zscore_15, hl_range, trade_rate]}\n"
        "validation: {walk_forward_folds: 2}\nprimary_metric: roc_auc\ngate: {min_roc_auc: 0.5}\n"
    )
    spec = load_spec(spec_file)
    _run([spec], resources, instance)
    row = storage.registry.list_models().row(0, named=True)
    assert (row["name"], row["trainer"], row["version"]) == ("big_move_1m", "test_nearest_centroid", 1)
    trainer, version = storage.registry.load("big_move_1m", 1)
    assert version.artifact.name == "centroids.json"
    report = (version.directory / "report.md").read_text()
    assert "| roc_auc |" in report and "Walk-forward" in report


@register_label_strategy
@dataclass(frozen=True)
class EchoReturn(LabelStrategy):
    """A broken strategy: the label is the bar's own return, which the feature `return_1` already is."""

    name: ClassVar[str] = "test_echo_return"
    task: ClassVar[str] = "regression"

    def compute(self, ctx):
        bars = ctx.bars.sort("token", "ts")
        return bars.select(
            "token", "ts", (pl.col("close") / pl.col("close").shift(1).over("token") - 1).alias("label"),
            (pl.col("ts") + ctx.step).alias("horizon_end"),
        ).drop_nulls()


def test_a_broken_spec_stops_itself_only_and_the_failure_names_asset_spec_day_and_rule(tmp_path, resources, instance, storage):
    spec_file = tmp_path / "echo_2s.yaml"
    spec_file.write_text(
        "name: echo_2s\ndescription: leaks its label through return_1.\ninterval: 2s\n"
        "label: {strategy: test_echo_return}\ntrainer: {name: xgboost_regressor, params: {n_estimators: 10}}\n"
        "features: {include: [return_1, volume_rate, trade_rate]}\nvalidation: {walk_forward_folds: 0}\n"
    )
    pump = replace(PUMP_SPEC, walk_forward_folds=0)
    result = materialize_range(START, LAST, resources=resources, instance=instance, raise_on_error=False,
                               assets=[*UPSTREAM, *build_specs_assets([load_spec(spec_file), pump])])
    assert not result.success
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # The healthy spec went all the way; the broken one stopped at its own training rows.
    assert {"labels_pump_detector_2s", "training_set_pump_detector_2s", "model_pump_detector_2s",
            "validation_pump_detector_2s", "labels_echo_2s"} <= done
    assert not {"training_set_echo_2s", "model_echo_2s", "validation_echo_2s"} & done
    [check] = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
               and e.event_specific_data.asset_key.to_user_string() == "training_set_echo_2s"]
    assert not check.passed
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.to_string()
    assert "training_set_echo_2s" in message and "no feature leaks the label" in message and "return_1" in message
    assert START.isoformat() in message  # the day
    assert storage.registry.promoted("pump_detector_2s")["version"] == 1
    assert storage.warehouse.available_days("training_set_echo_2s") == []
