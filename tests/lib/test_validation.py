from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl

from alevor_assets.lib.validation import chronological_split, evaluate_gate

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _rows(n=100, horizon_s=0):
    ts = [T0 + timedelta(minutes=i) for i in range(n)]
    return pl.DataFrame({
        "token": ["T"] * n, "ts": ts, "horizon_end": [t + timedelta(minutes=1, seconds=horizon_s) for t in ts],
        "label": np.arange(n) % 2, "weight": np.ones(n),
    }).with_columns(pl.col("ts", "horizon_end").dt.cast_time_unit("us"))


def test_purging_removes_exactly_the_rows_whose_horizon_reaches_the_next_fold():
    rows = _rows(100, horizon_s=150)  # each label looks 3.5 minutes past its bar start
    split = chronological_split(rows, 0.7, 0.15)
    b1 = split.train.end_us
    train_all = rows.filter(pl.col("ts").dt.epoch("us") < b1)
    expected_kept = train_all.filter(pl.col("horizon_end").dt.epoch("us") <= b1)
    assert split.train.rows.equals(expected_kept)
    # minutes 67, 68, 69 have horizons at 70.5, 71.5, 72.5 > 70: exactly those three go.
    assert train_all.height - expected_kept.height == 3
    assert split.purged_rows == 3 + 3
    assert split.test.rows["ts"].min() >= split.validation.rows["ts"].max()


def test_embargo_drops_the_configured_span_after_each_boundary():
    rows = _rows(100)
    plain = chronological_split(rows, 0.7, 0.15)
    emb = chronological_split(rows, 0.7, 0.15, embargo_us=5 * 60 * 1_000_000)
    assert plain.validation.height - emb.validation.height == 5
    assert plain.test.height - emb.test.height == 5
    assert emb.embargoed_rows == 10
    assert emb.test.rows["ts"].min() == datetime.fromtimestamp(emb.test.start_us / 1e6 + 300, timezone.utc)


def test_gate_rules():
    ok = evaluate_gate({"pr_auc": 0.4, "max_drawdown": 0.1}, {"min_pr_auc": 0.3, "max_max_drawdown": 0.2})
    assert ok.passed
    bad = evaluate_gate({"pr_auc": 0.2}, {"min_pr_auc": 0.3, "min_event_recall": 0.5})
    assert not bad.passed and bad.failures() == ["event_recall >= 0.5", "pr_auc >= 0.3"]
