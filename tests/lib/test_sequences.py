"""Bar sequences for the sequence models: windows stay within one token's contiguous bars of the
frame they are built from, and through ``modeling.train`` no training or validation sequence
reaches across a fold boundary, into a purged horizon or past the embargo."""

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from alevor_assets.lib.modeling import evaluate, split_rows, train
from alevor_assets.lib.specs import parse_spec
from alevor_assets.lib.training.sequence_models import LSTMClassifierTrainer, TransformerClassifierTrainer
from alevor_assets.lib.training.sequences import PAD, bar_step_us, sequence_windows

HOUR_US = 3_600_000_000
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def test_windows_follow_one_tokens_contiguous_bars_oldest_first():
    # Rows deliberately shuffled; token B misses its hour 3 (a gap).
    tokens = np.array(["A", "B", "A", "B", "A", "B", "A", "B", "B"])
    hours = np.array([2, 0, 0, 4, 1, 1, 3, 2, 5])
    ts = hours * HOUR_US
    w = sequence_windows(tokens, ts, 3, HOUR_US)
    assert w.shape == (9, 3)
    assert (w[:, -1] == np.arange(9)).all()  # each row's own bar is last

    def hours_of(i):
        return [None if j == PAD else (tokens[j], int(hours[j])) for j in w[i]]

    assert hours_of(0) == [("A", 0), ("A", 1), ("A", 2)]
    assert hours_of(2) == [None, None, ("A", 0)]
    assert hours_of(6) == [("A", 1), ("A", 2), ("A", 3)]
    assert hours_of(7) == [("B", 0), ("B", 1), ("B", 2)]
    assert hours_of(3) == [None, None, ("B", 4)]  # hour 3 missing: the window stops at the gap
    assert hours_of(8) == [None, ("B", 4), ("B", 5)]
    assert bar_step_us(tokens, ts) == HOUR_US
    # Step 0 (no token with two rows): only the row itself.
    assert (sequence_windows(tokens, ts, 3, 0)[:, :2] == PAD).all()
    with pytest.raises(ValueError):
        sequence_windows(tokens, ts, 0, HOUR_US)


def _rows(tokens=3, hours=240, seed=1):
    """Hourly rows with a 4 h label horizon; token T0's hour 120 looks 60 h ahead, past the
    validation boundary at hour 168 (a long label, purged)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(tokens):
        ts = [T0 + timedelta(hours=h) for h in range(hours)]
        x = rng.normal(size=(hours, 3))
        label = (x[:, 0] + 0.5 * rng.normal(size=hours) > 0).astype(np.int64)
        horizon = [t + timedelta(hours=60 if (k == 0 and h == 120) else 4) for h, t in enumerate(ts)]
        out.append(pl.DataFrame({
            "token": f"T{k}", "interval": "1h", "ts": ts, "spec": "seq",
            "a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": label, "weight": 1.0, "horizon_end": horizon,
        }))
    return pl.concat(out).with_columns(pl.col("ts", "horizon_end").dt.cast_time_unit("us"))


SPEC = parse_spec({
    "name": "seq", "interval": "1h", "label": {"strategy": "direction", "params": {"horizon": "4h"}},
    "trainer": {"name": "lstm_classifier"}, "split": {"embargo": "4h"}, "primary_metric": "roc_auc",
    "validation": {"walk_forward_folds": 0},
})


class _Recording:
    """Keeps every frame's key columns and the windows built on it (oldest bar first)."""

    def _inputs(self, x):
        z, windows = super()._inputs(x)
        keys = x.select("token", pl.col("ts").dt.epoch("us").alias("ts_us"))
        self.seen.append((keys, windows))
        return z, windows


class RecordingLSTM(_Recording, LSTMClassifierTrainer):
    pass


class RecordingTransformer(_Recording, TransformerClassifierTrainer):
    pass


@pytest.mark.parametrize("cls", [RecordingLSTM, RecordingTransformer])
def test_no_training_sequence_crosses_a_fold_boundary_or_a_purged_horizon(cls):
    rows = _rows()
    trainer = cls(sequence_length=48, max_epochs=2, patience=1, hidden_size=4) if cls is RecordingLSTM else \
        cls(sequence_length=48, max_epochs=2, patience=1, d_model=4, nhead=1, num_layers=1, dim_feedforward=8)
    trainer.seen = []
    result = train(SPEC, rows, trainer)
    split = split_rows(SPEC, rows)
    assert split.purged_rows > 0 and split.embargoed_rows > 0
    val_start, test_start = split.validation.start_us, split.test.start_us
    # The embargo holds: the validation fold's first rows come 4 h after its boundary.
    assert split.validation.rows["ts"].dt.epoch("us").min() >= val_start + 4 * HOUR_US
    # The first two frames are the training and validation folds, exactly (with their order).
    (train_keys, train_w), (val_keys, val_w) = trainer.seen[:2]
    assert train_keys.height == split.train.height and val_keys.height == split.validation.height
    by_key = {(t, s): he for t, s, he in split.train.rows.select(
        "token", pl.col("ts").dt.epoch("us"), pl.col("horizon_end").dt.epoch("us")).iter_rows()}
    purged = rows.filter(pl.col("token") == "T0", pl.col("ts") == T0 + timedelta(hours=120))
    assert (purged["horizon_end"].dt.epoch("us")[0] > val_start) and (("T0", int(purged["ts"].dt.epoch("us")[0])) not in by_key)

    long_windows = 0
    for keys, windows, lo, hi in ((train_keys, train_w, None, val_start), (val_keys, val_w, val_start, test_start)):
        tok, ts = keys["token"].to_numpy(), keys["ts_us"].to_numpy()
        for i, window in enumerate(windows):
            members = window[window != PAD]
            assert members[-1] == i
            assert (tok[members] == tok[i]).all()  # one token
            assert (np.diff(ts[members]) == HOUR_US).all()  # contiguous bars: no purged row skipped
            assert ts[members].max() < hi and (lo is None or ts[members].min() >= lo)  # inside the fold
            if lo is None:
                # Every bar of a training sequence is a training row, and its label ended before
                # the validation fold began: nothing reaches into a purged horizon.
                assert all(by_key[(tok[i], int(s))] <= val_start for s in ts[members])
            long_windows += len(members) > 24
    assert long_windows > 0  # sequences do span many bars where the fold allows
    # The purged long-horizon row splits T0's training bars: no window bridges hour 119 to 121.
    after = int(purged["ts"].dt.epoch("us")[0]) + HOUR_US
    t0 = np.flatnonzero(((train_keys["token"] == "T0") & (train_keys["ts_us"] == after)).to_numpy())
    assert len(t0) == 1 and (train_w[t0[0]][:-1] == PAD).all()
    assert result.validation_metrics["roc_auc"] is not None
    # The test fold is scored on its own rows: its windows reach back no further than its first row.
    evaluate(SPEC, trainer, split.test.rows, result.features, result.threshold, trainer.fit_info().get("classes"))
    test_keys, test_w = trainer.seen[-1]
    assert test_keys.height == split.test.height
    first_test = split.test.rows["ts"].dt.epoch("us").min()
    ts = test_keys["ts_us"].to_numpy()
    assert all(ts[w[w != PAD]].min() >= first_test for w in test_w)


def test_a_sequence_model_scores_the_same_rows_in_any_order(tmp_path):
    rows = _rows(tokens=2, hours=120)
    trainer = LSTMClassifierTrainer(sequence_length=6, max_epochs=3, hidden_size=8)
    train(SPEC, rows, trainer)
    x = rows.select("token", "ts", "a", "b", "c")
    score = trainer.predict_score(x)
    shuffled = x.with_row_index("i").sample(fraction=1.0, shuffle=True, seed=3)
    again = trainer.predict_score(shuffled.drop("i"))
    np.testing.assert_allclose(again, score[shuffled["i"].to_numpy()], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="token, ts"):
        trainer.predict_score(x.drop("token"))
