"""The model zoo's artifacts (safetensors, LightGBM text, CatBoost JSON): the registry round-trips
each and refuses a tampered one; each loader refuses files that are not its allowlisted format
(pickles included); hyperparameters are typed; no module loads pickles."""

import json
import pickle
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from safetensors.torch import save_file

import alevor_assets
from alevor_assets.lib.catalog import Catalog
from alevor_assets.lib.registry import ArtifactIntegrityError, ModelRegistry
from alevor_assets.lib.training import make_trainer

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
SMALL = {
    "lightgbm_classifier": {"n_estimators": 30},
    "catboost_classifier": {"iterations": 30},
    "lstm_classifier": {"sequence_length": 3, "max_epochs": 2, "hidden_size": 4},
    "transformer_classifier": {"sequence_length": 3, "max_epochs": 2, "d_model": 4, "nhead": 2, "num_layers": 1,
                               "dim_feedforward": 8},
}


def _fitted(name):
    rng = np.random.default_rng(5)
    n = 300
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] > 0).astype(np.int64)
    frame = pl.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2]})
    trainer = make_trainer(name, SMALL[name])
    if trainer.needs_keys:
        ts = pl.Series("ts", [T0 + timedelta(hours=i) for i in range(n)]).dt.cast_time_unit("us")
        frame = frame.with_columns(pl.lit("T").alias("token"), ts)
    trainer.fit(frame[:200], y[:200], np.ones(200), frame[200:], y[200:], np.ones(100))
    return trainer, frame[200:]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_registry_round_trips_and_refuses_a_tampered_artifact(name, tmp_path):
    trainer, xv = _fitted(name)
    registry = ModelRegistry(tmp_path / "models", Catalog(tmp_path / "alevor.duckdb"))
    meta = {"trainer": {"name": name, "params": trainer.params()}, "features": ["a", "b", "c"],
            "fit": trainer.fit_info(), "interval": "1h", "code_version": "test"}
    version = registry.save("zoo", trainer, meta)
    assert version.artifact.name == trainer.artifact_file
    loaded, _ = registry.load("zoo", version.version)
    np.testing.assert_allclose(loaded.predict_score(xv), trainer.predict_score(xv), rtol=1e-12, atol=1e-15)
    # One byte changed in the middle of the file: refused by its sha256 before anything parses it.
    data = bytearray(version.artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    version.artifact.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        registry.load("zoo", version.version)


class Payload:
    def __reduce__(self):
        return (print, ("pickle executed",))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_pickle_under_the_artifact_name_is_refused_without_running_it(name, tmp_path, capsys):
    trainer = make_trainer(name, SMALL[name])
    path = tmp_path / trainer.artifact_file
    path.write_bytes(pickle.dumps({"model": Payload()}))
    with pytest.raises(ValueError, match="not a"):
        trainer.load(path)
    assert "pickle executed" not in capsys.readouterr().out


def test_torch_save_files_are_refused(tmp_path):
    trainer = make_trainer("lstm_classifier", SMALL["lstm_classifier"])
    path = tmp_path / trainer.artifact_file
    torch.save({"weight": torch.zeros(2)}, path)  # torch's own format is a pickle in a zip
    with pytest.raises(ValueError, match="not a safetensors file"):
        trainer.load(path)


def _rewrite(path: Path, edit) -> None:
    """Re-save a safetensors model with its header or tensors edited."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta, tensors = dict(fh.metadata()), {k: fh.get_tensor(k) for k in fh.keys()}
    header = json.loads(meta["alevor"])
    edit(header, tensors, meta)
    meta["alevor"] = json.dumps(header)
    save_file(tensors, str(path), metadata=meta)


@pytest.mark.parametrize("edit, message", [
    (lambda h, t, m: h["architecture"].update(kind="gru"), "not allowlisted"),
    (lambda h, t, m: h["architecture"].update(kind="os.system"), "not allowlisted"),
    (lambda h, t, m: h["architecture"].update(hidden_size="4"), "must be int"),
    (lambda h, t, m: h["architecture"].update(extra=1), "exactly the fields"),
    (lambda h, t, m: t.update(smuggled=torch.zeros(1)), "do not match"),
    (lambda h, t, m: t.update({k: v.double() for k, v in t.items()}), "float32"),
    (lambda h, t, m: h.update(trainer="transformer_classifier"), "not a lstm_classifier artifact"),
    (lambda h, t, m: m.update(format="other/1"), "not an Alevor sequence model"),
    (lambda h, t, m: h["preprocessing"].update(mean=[0.0]), "preprocessing does not match"),
])
def test_safetensors_outside_the_allowlist_are_refused(edit, message, tmp_path):
    trainer, _ = _fitted("lstm_classifier")
    path = trainer.save(tmp_path)
    _rewrite(path, edit)
    with pytest.raises(ValueError, match=message):
        make_trainer("lstm_classifier", trainer.params()).load(path)


def test_lightgbm_and_catboost_files_outside_their_format_are_refused(tmp_path):
    lgb, _ = _fitted("lightgbm_classifier")
    path = lgb.save(tmp_path)
    text = path.read_text()
    path.write_text(re.sub(r"^objective=\S+", "objective=custom", text, count=1, flags=re.M))
    with pytest.raises(ValueError, match="not allowlisted"):
        make_trainer("lightgbm_classifier").load(path)
    path.write_text('{"tree": 1}')
    with pytest.raises(ValueError, match="not a LightGBM text model"):
        make_trainer("lightgbm_classifier").load(path)
    cat, _ = _fitted("catboost_classifier")
    path = cat.save(tmp_path)
    doc = json.loads(path.read_text())
    del doc["oblivious_trees"]
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="not a CatBoost JSON model"):
        make_trainer("catboost_classifier").load(path)
    cat._model.save_model(str(path), format="cbm")  # CatBoost's binary format is not accepted
    with pytest.raises(ValueError, match="not a CatBoost JSON model"):
        make_trainer("catboost_classifier").load(path)


def test_no_module_loads_pickles():
    root = Path(alevor_assets.__file__).parent
    banned = re.compile(r"^\s*(import|from)\s+(pickle|cloudpickle|dill|joblib)\b|torch\.load\(|pickle\.loads?\(", re.M)
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py") if banned.search(p.read_text())]
    assert offenders == []


def test_zoo_hyperparameters_are_typed():
    bad = [
        ("lightgbm_classifier", {"num_leaves": "many"}),
        ("lightgbm_classifier", {"balance_classes": "yes"}),
        ("lightgbm_regressor", {"learning_rate": [0.1]}),
        ("catboost_classifier", {"depth": 2.5}),
        ("catboost_regressor", {"iterations": True}),
        ("lstm_classifier", {"sequence_length": 0}),
        ("lstm_classifier", {"hidden_size": 0}),
        ("lstm_regressor", {"dropout": 1.0}),
        ("transformer_classifier", {"d_model": 10, "nhead": 4}),
        ("transformer_regressor", {"num_threads": -1}),
        ("transformer_classifier", {"learning_rate": 0}),
    ]
    for name, params in bad:
        with pytest.raises(ValueError):
            make_trainer(name, params)
            pytest.fail(f"{name} accepted {params}")
    with pytest.raises(ValueError, match="no hyperparameter"):
        make_trainer("lstm_classifier", {"d_model": 8})
    assert make_trainer("lstm_classifier", {"sequence_length": 12.0}).params()["sequence_length"] == 12


def test_sequence_training_is_reproducible_and_bounded_in_threads():
    before = torch.get_num_threads()
    a, xv = _fitted("transformer_classifier")
    b, _ = _fitted("transformer_classifier")
    np.testing.assert_array_equal(a.predict_score(xv), b.predict_score(xv))
    assert torch.get_num_threads() == before  # the process-wide setting is restored
    assert not torch.are_deterministic_algorithms_enabled()
