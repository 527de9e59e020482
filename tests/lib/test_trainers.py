"""Every registered trainer: fits a learnable problem, round-trips through its artifact with
identical scores, handles arbitrary class labels, validates its hyperparameters; the MLPs stop
early on the validation fold; skops artifacts holding types outside the allowlist are refused."""

import collections
import json
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import numpy as np
import polars as pl
import pytest
import skops.io as sio
from sklearn.metrics import log_loss, r2_score, roc_auc_score

from alevor_assets.lib.catalog import Catalog
from alevor_assets.lib.registry import ModelRegistry
from alevor_assets.lib.training import SKOPS_TRUSTED_PREFIXES, check_skops_file, make_trainer, trainers

N, N_TRAIN, N_FEATURES = 2000, 1400, 5
FEATURES = [f"f{i}" for i in range(N_FEATURES)]

# Smaller ensembles than the defaults keep the suite quick on two cores; everything else default.
FAST = {
    "random_forest_classifier": {"n_estimators": 60},
    "random_forest_regressor": {"n_estimators": 60},
    "xgboost_classifier": {"n_estimators": 150, "early_stopping_rounds": 20},
    "xgboost_regressor": {"n_estimators": 150, "early_stopping_rounds": 20},
    "lightgbm_classifier": {"n_estimators": 150, "early_stopping_rounds": 20},
    "lightgbm_regressor": {"n_estimators": 150, "early_stopping_rounds": 20},
    "catboost_classifier": {"iterations": 150, "early_stopping_rounds": 20},
    "catboost_regressor": {"iterations": 150, "early_stopping_rounds": 20},
    # The rows are independent, so a short window suffices; the row's own bar carries the signal.
    "lstm_classifier": {"sequence_length": 4, "max_epochs": 12, "learning_rate": 0.005},
    "lstm_regressor": {"sequence_length": 4, "max_epochs": 12, "learning_rate": 0.005},
    "transformer_classifier": {"sequence_length": 4, "max_epochs": 12},
    "transformer_regressor": {"sequence_length": 4, "max_epochs": 12},
}
EXPECTED = {
    "xgboost_classifier", "xgboost_regressor", "random_forest_classifier", "random_forest_regressor",
    "logistic_regression", "linear_regression", "mlp_classifier", "mlp_regressor", "svm_classifier",
    "svm_regressor", "lightgbm_classifier", "lightgbm_regressor", "catboost_classifier", "catboost_regressor",
    "lstm_classifier", "lstm_regressor", "transformer_classifier", "transformer_regressor",
}
# The shipped trainers (other tests register their own).
ALL = sorted(n for n, cls in trainers().items() if cls.__module__.startswith("alevor_assets."))
CLASSIFIERS = [n for n in ALL if trainers()[n].task == "classification"]
SKLEARN = [n for n in ALL if trainers()[n].artifact_file == "model.skops"]
ZOO = [n for n in ALL if trainers()[n].__module__.rsplit(".", 1)[1] in ("leafwise", "oblivious", "sequence_models")]
# CatBoost's JSON writes leaf values as decimal text: a round trip may move a score by an ulp.
JSON_FLOATS = {"catboost_classifier", "catboost_regressor"}
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _keyed(name, frame):
    """Sequence trainers also read ``token`` and ``ts``: one token, one row per hour."""
    if not trainers()[name].needs_keys:
        return frame
    ts = pl.Series("ts", [T0 + timedelta(hours=i) for i in range(frame.height)]).dt.cast_time_unit("us")
    return frame.with_columns(pl.lit("T").alias("token"), ts)


def _same_scores(name, a, b):
    if name in JSON_FLOATS:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    else:
        np.testing.assert_array_equal(a, b)


@lru_cache(maxsize=None)
def _data():
    """5 features with ~10% nulls; a signal on f0..f2, f3/f4 pure noise."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(N, N_FEATURES))
    signal = 1.2 * x[:, 0] + 0.8 * x[:, 1] - 0.6 * x[:, 2]
    x[rng.random(x.shape) < 0.1] = np.nan
    frame = pl.DataFrame({f: x[:, i] for i, f in enumerate(FEATURES)}, nan_to_null=True)
    binary = (signal + 0.6 * rng.normal(size=N) > 0.4).astype(np.int64)  # ~35% positives
    three = np.digitize(signal + 0.4 * rng.normal(size=N), [-0.7, 0.7]) - 1  # -1 / 0 / 1
    regression = signal + 0.4 * rng.normal(size=N)
    noise_class = rng.integers(0, 2, size=N)
    noise_value = rng.normal(size=N)
    return frame, {"binary": binary, "three": three, "regression": regression,
                   "noise_class": noise_class, "noise_value": noise_value}


def _fit(name, labels, params=None, weights=None):
    frame, ys = _data()
    frame = _keyed(name, frame)
    y = ys[labels]
    w = np.ones(N) if weights is None else weights
    trainer = make_trainer(name, {**FAST.get(name, {}), **(params or {})})
    trainer.fit(frame[:N_TRAIN], y[:N_TRAIN], w[:N_TRAIN], frame[N_TRAIN:], y[N_TRAIN:], w[N_TRAIN:])
    return trainer, frame[N_TRAIN:], y[N_TRAIN:]


def _task_labels(name):
    return "binary" if trainers()[name].task == "classification" else "regression"


def test_every_family_is_registered():
    assert EXPECTED <= set(ALL)
    for name in SKLEARN:
        assert trainers()[name].artifact_file == "model.skops"


@pytest.mark.parametrize("name", ALL)
def test_fit_beats_chance_and_round_trips(name, tmp_path):
    trainer, xv, yv = _fit(name, _task_labels(name))
    score = trainer.predict_score(xv)
    assert score.shape == (len(yv),) and np.isfinite(score).all()
    if trainer.task == "classification":
        assert roc_auc_score(yv, score) > 0.8
        assert ((score >= 0) & (score <= 1)).all()
    else:
        assert r2_score(yv, score) > 0.5

    artifact = trainer.save(tmp_path)
    assert artifact.name == trainer.artifact_file
    fresh = make_trainer(name, json.loads(json.dumps(trainer.params())))  # as metadata.json holds them
    fresh.load(artifact)
    _same_scores(name, fresh.predict_score(xv), score)

    importance = fresh.feature_importance()
    if importance:
        assert set(importance) == set(FEATURES)
        assert sum(importance.values()) == pytest.approx(1.0)
        top_two = sorted(importance, key=importance.get, reverse=True)[:2]
        assert set(top_two) <= {"f0", "f1", "f2"}
    json.dumps(trainer.fit_info(), default=str)  # goes into metadata.json


@pytest.mark.parametrize("name", SKLEARN)
def test_sklearn_artifacts_are_skops_within_the_allowlist(name, tmp_path):
    trainer, xv, _ = _fit(name, _task_labels(name))
    artifact = trainer.save(tmp_path)
    with open(artifact, "rb") as fh:
        assert fh.read(2) == b"PK"  # a skops zip (JSON + arrays), not a pickle stream
    for t in check_skops_file(artifact):
        assert t.startswith(SKOPS_TRUSTED_PREFIXES)
    # The fitted column order is kept; a frame with the columns reordered scores the same.
    assert trainer.fit_info()["features"] == FEATURES
    np.testing.assert_array_equal(trainer.predict_score(xv.select(FEATURES[::-1])), trainer.predict_score(xv))
    with pytest.raises(ValueError, match="missing"):
        trainer.predict_score(xv.drop("f3"))
    # Fixed seeds: a second fit gives the same model.
    again, _, _ = _fit(name, _task_labels(name))
    np.testing.assert_array_equal(again.predict_score(xv), trainer.predict_score(xv))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_multiclass_labels_minus_one_zero_one(name, tmp_path):
    trainer, xv, yv = _fit(name, "three")
    proba = trainer.predict_score(xv)
    assert proba.shape == (len(yv), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert trainer.fit_info()["classes"] == [-1, 0, 1]
    # Columns follow the sorted class values.
    for column, cls in enumerate([-1, 0, 1]):
        assert roc_auc_score(yv == cls, proba[:, column]) > 0.8
    assert roc_auc_score(yv, proba, multi_class="ovr") > 0.8
    predicted = np.array([-1, 0, 1])[proba.argmax(axis=1)]
    assert (predicted == yv).mean() > 0.6
    fresh = make_trainer(name, trainer.params())
    fresh.load(trainer.save(tmp_path))
    _same_scores(name, fresh.predict_score(xv), proba)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_binary_score_is_the_larger_class(name):
    """Labels -1/1: the score is P(1), not P(-1)."""
    frame, ys = _data()
    frame = _keyed(name, frame)
    y = np.where(ys["binary"] == 1, 1, -1)
    trainer = make_trainer(name, FAST.get(name, {}))
    trainer.fit(frame[:N_TRAIN], y[:N_TRAIN], np.ones(N_TRAIN), frame[N_TRAIN:], y[N_TRAIN:], np.ones(N - N_TRAIN))
    score = trainer.predict_score(frame[N_TRAIN:])
    assert score.ndim == 1
    assert roc_auc_score(y[N_TRAIN:] == 1, score) > 0.8


@pytest.mark.parametrize("name", SKLEARN + ZOO)
def test_missing_and_infinite_values_are_imputed(name):
    rng = np.random.default_rng(3)
    n = 300
    a = rng.normal(size=n)
    b = rng.normal(size=n)
    b[::17] = np.inf
    frame = pl.DataFrame(
        {"a": a, "empty": [None] * n, "b": b}, schema={"a": pl.Float64, "empty": pl.Float64, "b": pl.Float64}
    )
    frame = _keyed(name, frame)
    y = (a > 0).astype(np.int64) if trainers()[name].task == "classification" else a
    trainer = make_trainer(name, FAST.get(name, {}))
    trainer.fit(frame[:200], y[:200], np.ones(200), frame[200:], y[200:], np.ones(100))
    score = trainer.predict_score(frame[200:])
    assert np.isfinite(score).all()
    assert set(trainer.feature_importance()) in (set(), {"a", "empty", "b"})


def test_make_trainer_validates_hyperparameters():
    with pytest.raises(ValueError, match="no hyperparameter"):
        make_trainer("random_forest_classifier", {"n_trees": 10})
    with pytest.raises(ValueError, match="no hyperparameter"):
        make_trainer("mlp_classifier", {"hidden_layers": "8"})
    bad = [
        ("random_forest_classifier", {"n_estimators": "many"}),
        ("random_forest_classifier", {"n_estimators": True}),
        ("random_forest_classifier", {"n_estimators": 0}),
        ("random_forest_classifier", {"max_depth": 2.5}),
        ("random_forest_classifier", {"max_features": "all"}),
        ("random_forest_regressor", {"max_features": 1.5}),
        ("random_forest_classifier", {"balance_classes": "yes"}),
        ("logistic_regression", {"C": "big"}),
        ("logistic_regression", {"C": -1.0}),
        ("logistic_regression", {"max_iter": 1.5}),
        ("linear_regression", {"alpha": [1.0]}),
        ("svm_classifier", {"C": 0}),
        ("svm_regressor", {"epsilon": -0.1}),
        ("mlp_classifier", {"hidden_layer_sizes": "64,abc"}),
        ("mlp_classifier", {"hidden_layer_sizes": [64, 0]}),
        ("mlp_regressor", {"hidden_layer_sizes": 2.5}),
        ("mlp_regressor", {"patience": "ten"}),
        ("mlp_regressor", {"learning_rate_init": 0}),
    ]
    for name, params in bad:
        with pytest.raises(ValueError):
            make_trainer(name, params)
            pytest.fail(f"{name} accepted {params}")
    # Accepted spellings are normalized, so params() is plain JSON and round-trips.
    mlp = make_trainer("mlp_classifier", {"hidden_layer_sizes": [32, 16], "max_epochs": 50.0})
    assert mlp.params()["hidden_layer_sizes"] == "32,16" and mlp.params()["max_epochs"] == 50
    assert make_trainer("mlp_regressor", {"hidden_layer_sizes": " 8 "}).params()["hidden_layer_sizes"] == "8"
    rf = make_trainer("random_forest_classifier", {"max_depth": None, "max_features": 0.5})
    assert rf.params()["max_depth"] is None and rf.params()["max_features"] == 0.5
    assert make_trainer("random_forest_classifier", {"max_depth": 8}).params()["max_depth"] == 8
    assert make_trainer("random_forest_regressor").params()["max_features"] == 1.0
    assert make_trainer("logistic_regression", {"C": 2}).params()["C"] == 2.0


def test_mlp_classifier_stops_early_on_noise_and_keeps_the_best_epoch():
    trainer, xv, yv = _fit("mlp_classifier", "noise_class", {"patience": 5, "balance_classes": False})
    info = trainer.fit_info()
    assert info["stopped_early"] and info["epochs_run"] < trainer.max_epochs
    assert info["epochs_run"] == info["best_epoch"] + trainer.patience
    # The kept weights are the best epoch's, not the last one's.
    assert log_loss(yv, trainer.predict_score(xv)) == pytest.approx(info["best_validation_loss"], rel=1e-9)


def test_mlp_regressor_stops_early_on_noise_and_keeps_the_best_epoch():
    trainer, xv, yv = _fit("mlp_regressor", "noise_value", {"patience": 5})
    info = trainer.fit_info()
    assert info["stopped_early"] and info["epochs_run"] < trainer.max_epochs
    assert info["epochs_run"] == info["best_epoch"] + trainer.patience
    mse = np.mean((trainer.predict_score(xv) - yv) ** 2) / info["target_scale"] ** 2
    assert mse == pytest.approx(info["best_validation_loss"], rel=1e-9)


class NotAModel:
    """A type no allowlist covers."""

    def __init__(self):
        self.payload = "anything"


@pytest.mark.parametrize(
    "smuggled, refused",
    [
        (NotAModel(), "NotAModel"),
        (collections.Counter("abc"), "collections.Counter"),
        (eval, "builtins.eval"),
        (np.load, "numpy.load"),  # allowlisted module, but a function, not a class
    ],
)
def test_skops_types_outside_the_allowlist_are_refused(smuggled, refused, tmp_path):
    path = tmp_path / "crafted.skops"
    sio.dump({"format": "alevor.sklearn/1", "trainer": "logistic_regression", "model": smuggled,
              "features": FEATURES, "classes": [0, 1], "info": {}}, path)
    artifact = path.rename(tmp_path / "model.skops")
    with pytest.raises(ValueError, match="refusing to load") as err:
        make_trainer("logistic_regression").load(artifact)
    assert refused in str(err.value)


def test_an_artifact_of_another_trainer_is_refused(tmp_path):
    trainer, _, _ = _fit("logistic_regression", "binary")
    artifact = trainer.save(tmp_path)
    with pytest.raises(ValueError, match="not a svm_classifier artifact"):
        make_trainer("svm_classifier").load(artifact)


def test_registry_round_trips_a_skops_model(tmp_path):
    trainer, xv, _ = _fit("svm_classifier", "binary")
    registry = ModelRegistry(tmp_path / "models", Catalog(tmp_path / "alevor.duckdb"))
    meta = {"trainer": {"name": trainer.name, "params": trainer.params()}, "features": FEATURES,
            "fit": trainer.fit_info(), "interval": "1m", "code_version": "test"}
    version = registry.save("svm", trainer, meta)
    assert version.artifact.name == "model.skops"
    loaded, _ = registry.load("svm", version.version)
    np.testing.assert_array_equal(loaded.predict_score(xv), trainer.predict_score(xv))
    assert loaded.fit_info()["classes"] == [0, 1]


@pytest.mark.parametrize("name", ["xgboost_classifier", "xgboost_regressor"])
def test_xgboost_early_stops_on_a_plain_dmatrix_with_the_stock_estimators_model(name, tmp_path):
    """The validation fold is evaluated on a DMatrix (not XGBoost's default QuantileDMatrix,
    slow to predict on): the same early stop and the very same model bytes as the stock
    scikit-learn estimator."""
    import xgboost as xgb

    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 6))
    x[rng.random(x.shape) < 0.02] = np.nan
    y = (np.nan_to_num(x[:, 0]) + rng.normal(size=3000) > 0.8).astype(int) if name.endswith("classifier") else np.nan_to_num(x[:, 1]) * 2 + rng.normal(size=3000)
    frame = pl.DataFrame(x, schema=[f"f{i}" for i in range(6)])
    xt, xv, yt, yv = frame[:2000], frame[2000:], y[:2000], y[2000:]
    params = {"n_estimators": 300, "early_stopping_rounds": 15, "learning_rate": 0.3}
    ours = make_trainer(name, {**params, **({"balance_classes": False} if name.endswith("classifier") else {})})
    ours.fit(xt, yt, np.ones(2000), xv, yv, np.ones(1000))
    evaluated = []
    stock_type = xgb.XGBClassifier if name.endswith("classifier") else xgb.XGBRegressor

    class Watched(stock_type):
        def _create_dmatrix(self, ref, **kwargs):
            m = super()._create_dmatrix(ref, **kwargs)
            evaluated.append(type(m).__name__)
            return m

    our_type = type(ours._model)
    assert our_type.__name__ == stock_type.__name__ and issubclass(our_type, stock_type)
    reference = ours._model._create_dmatrix(None, data=xt.to_numpy(), label=yt)
    assert type(ours._model._create_dmatrix(reference, data=xv.to_numpy(), label=yv)) is xgb.DMatrix
    stock = Watched(**{**ours._model.get_params()})
    stock.fit(xt, yt, sample_weight=np.ones(2000), eval_set=[(xv, yv)], sample_weight_eval_set=[np.ones(1000)], verbose=False)
    assert evaluated == ["QuantileDMatrix", "QuantileDMatrix"]  # what the stock estimator does
    assert 0 < ours.fit_info()["best_iteration"] == stock.best_iteration < 299
    stock.save_model(tmp_path / "stock.ubj")
    assert ours.save(tmp_path).read_bytes() == (tmp_path / "stock.ubj").read_bytes()


@pytest.mark.parametrize("name", ["xgboost_classifier", "xgboost_regressor"])
def test_xgboost_models_equal_xgboost_fitted_on_the_polars_float64_frame(name):
    """The trainers hand XGBoost float32 pandas frames because it builds its matrices faster
    from them; the model must still be byte for byte the one XGBoost fits on the Float64 Polars
    frame itself (same cut points, same trees), with the same scores."""
    from alevor_assets.lib.training.boosting import _estimator

    frame, targets = _data()
    # Values that float32 rounds, so a cast that rounded differently than XGBoost would show.
    x = frame.with_columns(pl.col("f0") * 1.000000123456789)
    y = targets["binary"] if name == "xgboost_classifier" else targets["regression"]
    xt, xv, yt, yv = x[:N_TRAIN], x[N_TRAIN:], y[:N_TRAIN], y[N_TRAIN:]
    w = np.ones(N)
    trainer = make_trainer(name, FAST[name])
    trainer.fit(xt, yt, w[:N_TRAIN], xv, yv, w[N_TRAIN:])
    kind = "classifier" if name == "xgboost_classifier" else "regressor"
    params = trainer._model.get_params()
    reference = _estimator(kind)(**params)
    wt = w[:N_TRAIN] * trainer._balance(yt) if name == "xgboost_classifier" else w[:N_TRAIN]
    reference.fit(xt, yt, sample_weight=wt, eval_set=[(xv, yv)], sample_weight_eval_set=[w[N_TRAIN:]], verbose=False)
    assert trainer._model.get_booster().save_raw("ubj") == reference.get_booster().save_raw("ubj")
    expected = reference.predict_proba(xv)[:, 1] if kind == "classifier" else reference.predict(xv)
    np.testing.assert_array_equal(trainer.predict_score(xv), expected)
