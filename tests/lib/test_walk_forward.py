from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from alevor_assets.lib.validation import walk_forward_folds

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
T0_US = int(T0.timestamp()) * 1_000_000
MIN_US = 60_000_000


def _rows(n=100, horizon=timedelta(minutes=1), tokens=("T",), long_horizon=None):
    """One row per minute (and token); ``long_horizon`` = {minute: horizon} overrides."""
    ts = [T0 + timedelta(minutes=i) for i in range(n) for _ in tokens]
    minute = [i for i in range(n) for _ in tokens]
    hz = [(long_horizon or {}).get(m, horizon) for m in minute]
    return pl.DataFrame({
        "token": [t for _ in range(n) for t in tokens], "minute": minute, "ts": ts,
        "horizon_end": [t + h for t, h in zip(ts, hz)],
    }).with_columns(pl.col("ts", "horizon_end").dt.cast_time_unit("us"))


def _minutes(df):
    return df["minute"].to_list()


def test_fold_boundaries_and_counts():
    folds = walk_forward_folds(_rows(100), n_folds=4)
    # 30 initial training rows; the other 70 are cut at rows 30 + 70k//4 = 47, 65, 82.
    starts = [30, 47, 65, 82]
    assert [f.index for f in folds] == [0, 1, 2, 3]
    assert [f.test_start_us for f in folds] == [T0_US + s * MIN_US for s in starts]
    assert [f.test_end_us for f in folds] == [T0_US + s * MIN_US for s in starts[1:]] + [T0_US + 99 * MIN_US + 1]
    assert [f.test.height for f in folds] == [17, 18, 17, 18]
    for f, s, e in zip(folds, starts, starts[1:] + [100]):
        assert _minutes(f.test) == list(range(s, e))
        # Horizon of one minute: a label ending exactly at test_start does not leak.
        assert _minutes(f.train) == list(range(s))
        assert f.purged_rows == 0 and f.embargoed_rows == 0


def test_purges_exactly_the_rows_whose_horizon_reaches_into_the_test_fold():
    # Labels look 3.5 minutes ahead; minute 5 looks 45 minutes ahead (until minute 50).
    rows = _rows(100, horizon=timedelta(minutes=3, seconds=30), long_horizon={5: timedelta(minutes=45)})
    folds = walk_forward_folds(rows, n_folds=4)
    for f, s in zip(folds, [30, 47, 65, 82]):
        # ts + 3.5 min > s  <=>  minute in {s-3, s-2, s-1}; minute 5 reaches into folds starting before 50.
        purged = {s - 3, s - 2, s - 1} | ({5} if s < 50 else set())
        assert _minutes(f.train) == [m for m in range(s) if m not in purged]
        assert f.purged_rows == len(purged)
        assert f.embargoed_rows == 0
        assert (f.train["horizon_end"].dt.epoch("us") <= f.test_start_us).all()
        assert (f.train["ts"].dt.epoch("us") < f.test_start_us).all()
    assert [f.purged_rows for f in folds] == [4, 4, 3, 3]


def test_embargo_drops_exactly_the_configured_span_before_each_test_fold():
    five = 5 * MIN_US
    for f, s in zip(walk_forward_folds(_rows(100), n_folds=4, embargo_us=five), [30, 47, 65, 82]):
        assert _minutes(f.train) == list(range(s - 5))  # minutes s-5 .. s-1 dropped
        assert (f.purged_rows, f.embargoed_rows) == (0, 5)
        assert f.train["ts"].dt.epoch("us").max() < f.test_start_us - five
    # 4.5 minutes: [s - 4.5 min, s) holds minutes s-4 .. s-1.
    for f, s in zip(walk_forward_folds(_rows(100), n_folds=4, embargo_us=270_000_000), [30, 47, 65, 82]):
        assert _minutes(f.train) == list(range(s - 4)) and f.embargoed_rows == 4
    # Rows both purged and in the embargo span count as purged only.
    rows = _rows(100, horizon=timedelta(minutes=3, seconds=30))
    for f, s in zip(walk_forward_folds(rows, n_folds=4, embargo_us=five), [30, 47, 65, 82]):
        assert _minutes(f.train) == list(range(s - 5))
        assert (f.purged_rows, f.embargoed_rows) == (3, 2)


def test_rows_with_one_timestamp_stay_together_and_input_order_does_not_matter():
    rows = _rows(40, tokens=("A", "B", "C"))  # 120 rows, 3 per timestamp
    folds = walk_forward_folds(rows.reverse(), n_folds=3, min_train_fraction=0.25)
    # Row 30 is minute 10; 90 rows remain, cut at rows 30 + 30, 30 + 60 -> minutes 20, 30.
    assert [(f.test_start_us - T0_US) // MIN_US for f in folds] == [10, 20, 30]
    assert [f.test.height for f in folds] == [30, 30, 30]
    assert sorted(set(_minutes(folds[0].test))) == list(range(10, 20))
    assert folds[1].train.height == 60 and folds[1].train["ts"].is_sorted()


def test_single_fold_and_too_little_data():
    (only,) = walk_forward_folds(_rows(10), n_folds=1, min_train_fraction=0.5)
    assert _minutes(only.train) == [0, 1, 2, 3, 4] and _minutes(only.test) == [5, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="too few distinct timestamps"):
        walk_forward_folds(_rows(4), n_folds=4)  # 3 test timestamps for 4 folds
    with pytest.raises(ValueError, match="too few distinct timestamps"):
        walk_forward_folds(_rows(1, tokens=tuple("ABCDEFGHIJ")), n_folds=2)  # one timestamp
    with pytest.raises(ValueError, match="no rows"):
        walk_forward_folds(_rows(3).clear(), n_folds=2)
    assert len(walk_forward_folds(_rows(5), n_folds=4, min_train_fraction=0.2)) == 4  # 1 + 4 timestamps suffice


def test_folds_trained_two_at_a_time_equal_folds_trained_one_after_another(monkeypatch):
    """XGBoost folds run in two threads (each fit seeds its own booster): every fold's metrics and
    threshold are those of the folds trained in turn."""
    from dataclasses import replace

    import numpy as np

    import alevor_assets.lib.modeling as modeling
    from alevor_assets.lib.cores import in_threads
    from alevor_assets.lib.specs import model_specs
    from alevor_assets.lib.training import make_trainer

    spec = next(s for s in model_specs() if s.name == "regime_classifier_5m")
    spec = replace(spec, walk_forward_folds=4, split=replace(spec.split, embargo="0s"))
    rng = np.random.default_rng(3)
    n = 1200
    labels = rng.integers(0, 3, n)
    rows = _rows(n).with_columns(
        pl.Series("f1", rng.normal(size=n) + labels), pl.Series("f2", rng.normal(size=n)),
        pl.Series("label", labels, dtype=pl.Int64), pl.lit(1.0).alias("weight"),
    )
    params = {"n_estimators": 60, "max_depth": 3, "early_stopping_rounds": 10, "subsample": 0.7}
    threads = []

    def recording(fn, parts, n_threads):
        threads.append(n_threads)
        return in_threads(fn, parts, n_threads)

    def walk():
        return modeling.walk_forward(spec, rows, ["f1", "f2"], lambda: make_trainer("xgboost_classifier", params))

    monkeypatch.setattr(modeling, "in_threads", recording)
    monkeypatch.setattr(modeling, "usable_cores", lambda: 2)
    together = walk()
    monkeypatch.setattr(modeling, "usable_cores", lambda: 1)
    in_turn = walk()
    assert threads == [2, 1]
    assert len(together["folds"]) == 4 and all("skipped" not in f for f in together["folds"])
    assert together == in_turn
