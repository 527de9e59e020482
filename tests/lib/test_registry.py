import json

import numpy as np
import polars as pl
import pytest

from alevor_assets.lib.catalog import Catalog
from alevor_assets.lib.registry import ArtifactIntegrityError, ModelRegistry
from alevor_assets.lib.training import make_trainer


def _fitted():
    rng = np.random.default_rng(0)
    x = pl.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    y = (x["a"] + 0.3 * rng.normal(size=400) > 0).cast(pl.Int64).to_numpy()
    trainer = make_trainer("xgboost_classifier", {"n_estimators": 20, "early_stopping_rounds": 5})
    trainer.fit(x[:300], y[:300], np.ones(300), x[300:], y[300:], np.ones(100))
    return trainer, x


def _meta(trainer):
    return {"trainer": {"name": trainer.name, "params": trainer.params()}, "features": ["a", "b"], "threshold": 0.5, "interval": "1m", "code_version": "test"}


def test_versions_load_and_tampering_is_refused(tmp_path):
    reg = ModelRegistry(tmp_path / "models", Catalog(tmp_path / "alevor.duckdb"))
    trainer, x = _fitted()
    v1 = reg.save("m", trainer, _meta(trainer))
    v2 = reg.save("m", trainer, _meta(trainer))
    assert (v1.version, v2.version) == (1, 2)
    assert v1.artifact.name == "model.ubj"  # XGBoost's own format: data only
    meta = json.loads((v1.directory / "metadata.json").read_text())
    assert meta["artifact_sha256"] == v1.sha256 and meta["version"] == 1
    loaded, mv = reg.load("m", 1)
    np.testing.assert_array_equal(loaded.predict_score(x), trainer.predict_score(x))
    # Flip one byte of the artifact: the loader refuses it.
    data = bytearray(v1.artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    v1.artifact.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="refusing to load"):
        reg.load("m", 1)
    # Replacing it with another valid model is refused just the same.
    v1.artifact.write_bytes(v2.artifact.read_bytes() + b" ")
    with pytest.raises(ArtifactIntegrityError):
        reg.load("m", 1)
    with pytest.raises(LookupError, match="no a promoted version|no a promoted|promoted"):
        reg.load("m")


def test_promotion_is_exclusive(tmp_path):
    reg = ModelRegistry(tmp_path / "models", Catalog(tmp_path / "alevor.duckdb"))
    trainer, _ = _fitted()
    for _ in range(3):
        reg.save("m", trainer, _meta(trainer))
    reg.record_validation("m", 1, metrics={"pr_auc": 0.5}, primary_metric="pr_auc", gate_passed=True, promote=True, report_path=tmp_path / "r1")
    reg.record_validation("m", 2, metrics={"pr_auc": 0.4}, primary_metric="pr_auc", gate_passed=False, promote=False, report_path=tmp_path / "r2")
    reg.record_validation("m", 3, metrics={"pr_auc": 0.6}, primary_metric="pr_auc", gate_passed=True, promote=True, report_path=tmp_path / "r3")
    reg.save("m", trainer, _meta(trainer))
    reg.record_validation("m", 4, metrics={"pr_auc": 0.55}, primary_metric="pr_auc", gate_passed=True, promote=False, report_path=tmp_path / "r4")
    listing = reg.list_models()
    # A failed gate is `rejected`; a version that passed but did not beat the promoted one waits on `standby`.
    assert listing["status"].to_list() == ["archived", "rejected", "promoted", "standby"]
    assert reg.promoted("m")["version"] == 3
