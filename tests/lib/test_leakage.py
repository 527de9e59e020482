import numpy as np
import polars as pl

from alevor_assets.lib.contract import leaked_features


def _rows(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.05).astype(np.int64)
    return pl.DataFrame({
        "label": label,
        "honest": rng.normal(size=n) + label * 0.5,
        "near_constant": np.where(rng.random(n) < 0.9995, 0.0, 1.0),
        "future_label": label.astype(float),
        "future_scaled": label * 3.0 - 1.0,
    })


def test_a_feature_equal_to_the_future_label_is_caught_and_honest_ones_are_not():
    rows = _rows()
    leaks = leaked_features(rows, ["honest", "near_constant", "future_label", "future_scaled"])
    assert set(leaks) == {"future_label", "future_scaled"}


def test_regression_labels_use_correlation():
    rng = np.random.default_rng(1)
    y = rng.normal(size=1000)
    rows = pl.DataFrame({"label": y, "leak": y * 2 + 1e-6 * rng.normal(size=1000), "honest": y + rng.normal(size=1000)})
    assert set(leaked_features(rows, ["leak", "honest"])) == {"leak"}


def test_constant_label_days_prove_nothing():
    rows = _rows().with_columns(label=pl.lit(0, pl.Int64), future_label=pl.lit(0.0))
    assert leaked_features(rows, ["future_label"]) == {}


def test_a_small_sample_gives_no_verdict_and_the_whole_window_does():
    # Forty rows of an honest but smooth feature against a forward return: on so few rows a near-
    # perfect correlation is an accident of the sample, not leakage; the rule stays silent there.
    rng = np.random.default_rng(3)
    y = rng.normal(size=40)
    small = pl.DataFrame({"label": y, "leak": y * 2.0})
    assert leaked_features(small, ["leak"]) == {}
    # The same relation over a whole training window is caught.
    y = rng.normal(size=800)
    window = pl.DataFrame({"label": y, "leak": y * 2.0})
    assert set(leaked_features(window, ["leak"])) == {"leak"}
