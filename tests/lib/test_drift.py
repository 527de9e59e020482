from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl

from alevor_assets.lib.catalog import Catalog
from alevor_assets.lib.drift import drifted_features, psi
from alevor_assets.lib.lifecycle import drift_status, partition_hashes
from alevor_assets.lib.registry import ModelRegistry
from alevor_assets.lib.schemas import UTC_US
from alevor_assets.lib.specs import parse_spec
from alevor_assets.lib.training import make_trainer
from alevor_assets.lib.warehouse import Warehouse


def test_psi_is_zero_for_the_same_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=20_000)
    assert psi(ref, rng.normal(size=20_000)) < 0.01
    small, large = psi(ref, rng.normal(0.2, 1, 20_000)), psi(ref, rng.normal(1.0, 1, 20_000))
    assert 0.02 < small < 0.1 < 0.25 < large


def test_psi_by_hand_on_two_bins():
    # Reference quartiles put 1/2 of the mass below 2 and 1/2 above with 3 edges [0, 2, 4]... use
    # a reference of 0..9 with bins=2: edges 0, 4.5, 9 -> halves. Current: 8 of 10 in the upper half.
    ref = np.arange(10.0)
    cur = np.array([0, 1] + [6] * 8, dtype=float)
    expected = (0.2 - 0.5) * np.log(0.2 / 0.5) + (0.8 - 0.5) * np.log(0.8 / 0.5)
    assert abs(psi(ref, cur, bins=2) - expected) < 1e-12


def test_psi_undefined_for_constant_or_tiny_samples():
    assert psi(np.ones(100), np.ones(100)) is None
    assert psi(np.arange(5.0), np.arange(5.0)) is None


def test_psi_floors_empty_bins_and_puts_values_on_an_inner_edge_in_the_upper_bin():
    # Reference [0, 1, 2, 2, 3, 9] with two bins: edges [0, 2, 9]; a value equal to the inner edge
    # 2 counts in the upper bin, so the reference is 2/6 below and 4/6 above. The current sample
    # sits on or above the edge: the lower bin is empty and floored at 1e-4.
    ref = np.array([0.0, 1.0, 2.0, 2.0, 3.0, 9.0])
    cur = np.array([2.0, 2.0, 2.0, 3.0])
    expected = (1e-4 - 2 / 6) * np.log(1e-4 / (2 / 6)) + (1.0 - 4 / 6) * np.log(1.0 / (4 / 6))
    assert abs(psi(ref, cur, bins=2) - expected) < 1e-12
    # Non-finite values are ignored on both sides, not binned.
    noisy = np.concatenate([cur, [np.nan, np.inf, -np.inf]])
    assert psi(ref, noisy, bins=2) == psi(ref, cur, bins=2)


def test_a_feature_drifts_only_strictly_above_the_threshold():
    psi_values = {"at": 0.25, "above": 0.2500001, "below": 0.1}
    assert drifted_features(psi_values, 0.25) == {"above": 0.2500001}
    assert drifted_features(psi_values, 0.05) == psi_values
    assert drifted_features({}, 0.0) == {}


def _rows(day: date, shift: float, seed: int, n: int = 400) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    ts = [start + timedelta(seconds=60 * i) for i in range(n)]
    return pl.DataFrame({
        "token": ["T"] * n, "interval": ["1m"] * n, "ts": ts, "spec": ["toy"] * n,
        "f": rng.normal(shift, 1.0, n), "g": rng.normal(0.0, 1.0, n),
        "label": rng.integers(0, 2, n), "weight": np.ones(n), "horizon_end": ts,
    }).with_columns(pl.col("ts").cast(UTC_US), pl.col("horizon_end").cast(UTC_US))


def test_drift_status_reports_changed_training_partitions_and_drifted_features(tmp_path):
    spec = parse_spec({"name": "toy", "interval": "1m", "label": {"strategy": "direction"},
                       "trainer": {"name": "xgboost_classifier"}, "drift": {"psi_threshold": 0.25}})
    wh = Warehouse(tmp_path / "warehouse")
    reg = ModelRegistry(tmp_path / "models", Catalog(tmp_path / "alevor.duckdb"))
    d1, d2, d3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)
    assert drift_status(spec, wh, reg).changed == ["no model trained yet"]
    for i, d in enumerate((d1, d2)):
        wh.write_partition("training_set_toy", d, _rows(d, 0.0, i), sort_by=["token", "ts"])
    trainer = make_trainer("xgboost_classifier", {"n_estimators": 5, "early_stopping_rounds": 0})
    x = pl.DataFrame({"f": np.arange(20.0), "g": np.arange(20.0)})
    trainer.fit(x, np.arange(20) % 2, np.ones(20), x, np.arange(20) % 2, np.ones(20))
    reg.save("toy", trainer, {
        "trainer": {"name": trainer.name, "params": trainer.params()}, "features": ["f", "g"], "threshold": 0.5,
        "training": {"partitions": [d1.isoformat(), d2.isoformat()],
                     "partition_sha256": partition_hashes(wh, spec, [d1, d2])},
    })
    status = drift_status(spec, wh, reg)
    assert (status.changed, status.newer, status.drifted) == ([], [], {})
    # A newer day drawn from the same distribution: PSI below the threshold.
    wh.write_partition("training_set_toy", d3, _rows(d3, 0.0, 5), sort_by=["token", "ts"])
    status = drift_status(spec, wh, reg)
    assert status.newer == [d3.isoformat()] and set(status.psi) == {"f", "g"} and status.drifted == {}
    # The same day with `f` shifted by two standard deviations: only `f` drifts.
    wh.write_partition("training_set_toy", d3, _rows(d3, 2.0, 5), sort_by=["token", "ts"])
    status = drift_status(spec, wh, reg)
    assert list(status.drifted) == ["f"] and status.psi["g"] < 0.25
    # A training day rewritten with different rows: reported as changed.
    wh.write_partition("training_set_toy", d2, _rows(d2, 0.0, 99), sort_by=["token", "ts"])
    assert drift_status(spec, wh, reg).changed == [d2.isoformat()]
