import json
from pathlib import Path

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


# -- files as the source of truth, safe across processes ---------------------------------------------

import multiprocessing
from datetime import date, datetime, timedelta, timezone

import yaml

from alevor_assets.lib.lifecycle import train_version, validate_version
from alevor_assets.lib.registry import PromotionConflict
from alevor_assets.lib.schemas import UTC_US
from alevor_assets.lib.specs import parse_spec
from alevor_assets.lib.warehouse import Warehouse

TOY_SPEC = {
    "name": "toy", "interval": "1m", "label": {"strategy": "direction"}, "primary_metric": "roc_auc",
    "trainer": {"name": "xgboost_classifier", "params": {"n_estimators": 20, "early_stopping_rounds": 5}},
    "window": {"days": 6},
}


def test_the_registry_needs_no_database_and_a_broken_catalog_fails_nothing(tmp_path, caplog):
    bad = tmp_path / "alevor.duckdb"
    bad.mkdir()  # a catalog that cannot be replaced: every refresh fails
    reg = ModelRegistry(tmp_path / "models", Catalog(bad))
    trainer, _ = _fitted()
    v1 = reg.save("m", trainer, _meta(trainer))
    assert reg.record_validation("m", v1.version, metrics={"pr_auc": 0.5}, primary_metric="pr_auc",
                                 gate_passed=True, promote=True, report_path=tmp_path / "r") == "promoted"
    assert "catalog was not refreshed" in caplog.text
    # A registry that knows nothing of any catalog reads the same state from the files.
    plain = ModelRegistry(tmp_path / "models")
    assert plain.promoted("m")["version"] == 1 and plain.list_models()["status"].to_list() == ["promoted"]
    plain.load("m")


def test_the_catalog_is_a_copy_of_the_registry_files(tmp_path):
    catalog = Catalog(tmp_path / "alevor.duckdb")
    reg = ModelRegistry(tmp_path / "models", catalog)
    trainer, _ = _fitted()
    for _ in range(2):
        reg.save("m", trainer, _meta(trainer))
    reg.record_validation("m", 2, metrics={"pr_auc": 0.7}, primary_metric="pr_auc", gate_passed=True, promote=True,
                          report_path=tmp_path / "r")
    with catalog.connect() as con:
        rows = con.execute("SELECT version, status, primary_value FROM models ORDER BY version").fetchall()
    assert rows == [(1, "candidate", None), (2, "promoted", 0.7)]


def test_a_promotion_compared_with_a_stale_incumbent_is_refused(tmp_path):
    reg = ModelRegistry(tmp_path / "models")
    trainer, _ = _fitted()
    for _ in range(3):
        reg.save("m", trainer, _meta(trainer))
    kwargs = dict(metrics={"pr_auc": 0.5}, primary_metric="pr_auc", gate_passed=True, promote=True, report_path="r")
    assert reg.record_validation("m", 1, incumbent=None, **kwargs) == "promoted"
    with pytest.raises(PromotionConflict, match="v1 was promoted meanwhile"):
        reg.record_validation("m", 2, incumbent=None, **kwargs)
    assert reg.record_validation("m", 3, incumbent=1, **kwargs) == "promoted"
    assert reg.list_models()["status"].to_list() == ["archived", "candidate", "promoted"]


def _save_many(root: str, n: int, queue) -> None:
    reg = ModelRegistry(root)
    trainer, _ = _fitted()
    queue.put([reg.save("m", trainer, _meta(trainer)).version for _ in range(n)])


@pytest.mark.slow
def test_concurrent_saves_take_distinct_complete_versions(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_save_many, args=(str(tmp_path / "models"), 3, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    got = sorted(v for _ in procs for v in queue.get(timeout=300))
    for p in procs:
        p.join()
    assert got == list(range(1, 13))
    reg = ModelRegistry(tmp_path / "models")
    for v in got:
        assert reg.load("m", v)[1].metadata["version"] == v


def _promote_at_once(root: str, version: int, barrier, queue) -> None:
    reg = ModelRegistry(root)
    barrier.wait()
    try:
        queue.put((version, reg.record_validation("m", version, metrics={"pr_auc": 0.5}, primary_metric="pr_auc",
                                                  gate_passed=True, promote=True, report_path="r", incumbent=None)))
    except PromotionConflict as exc:
        queue.put((version, f"conflict with v{exc.actual}"))


@pytest.mark.slow
def test_promotion_is_a_compare_and_swap_across_processes(tmp_path):
    reg = ModelRegistry(tmp_path / "models")
    trainer, _ = _fitted()
    for _ in range(4):
        reg.save("m", trainer, _meta(trainer))
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_promote_at_once, args=(str(tmp_path / "models"), v, barrier, queue)) for v in range(1, 5)]
    for p in procs:
        p.start()
    outcomes = dict(queue.get(timeout=300) for _ in procs)
    for p in procs:
        p.join()
    winners = [v for v, o in outcomes.items() if o == "promoted"]
    assert len(winners) == 1
    assert all(o == f"conflict with v{winners[0]}" for v, o in outcomes.items() if v != winners[0])
    assert reg.promoted("m")["version"] == winners[0]
    assert sorted(p.name for p in (tmp_path / "models/m/decisions").iterdir()) == ["00000001.json"]


def _toy_warehouse(root: Path):
    root.mkdir(parents=True, exist_ok=True)
    (root / "toy.yaml").write_text(yaml.safe_dump(TOY_SPEC))
    spec = parse_spec(TOY_SPEC, str(root / "toy.yaml"))
    wh = Warehouse(root / "warehouse")
    rng = np.random.default_rng(0)
    for i in range(6):
        day = date(2024, 1, 1) + timedelta(days=i)
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        ts = [start + timedelta(minutes=4 * k) for k in range(300)]
        f = rng.normal(size=300)
        rows = pl.DataFrame({
            "token": "T", "interval": "1m", "ts": ts, "spec": "toy", "f": f, "g": rng.normal(size=300),
            "label": (f + 0.5 * rng.normal(size=300) > 0).astype(np.int64), "weight": 1.0,
            "horizon_end": [t + timedelta(minutes=2) for t in ts], "realized_return": rng.normal(0, 0.01, 300),
        }).with_columns(pl.col("ts", "horizon_end").cast(UTC_US))
        wh.write_partition(spec.training_set_asset, day, rows, sort_by=["token", "ts"])
    return spec, wh


def _validate_at_once(root: str, version: int, barrier, queue) -> None:
    spec, wh = _toy_warehouse(Path(root))
    reg = ModelRegistry(Path(root) / "models")
    record, waited = reg.record_validation, []

    def record_after_both_decided(*args, **kwargs):
        if not waited:  # both runs have compared with the same promoted version (none) by now
            waited.append(barrier.wait())
        return record(*args, **kwargs)

    reg.record_validation = record_after_both_decided
    validated = validate_version(spec, wh, reg, version)
    queue.put((version, validated.decision.promote, validated.decision.text))


@pytest.mark.slow
def test_two_runs_promoting_versions_of_one_spec_at_once_promote_exactly_one(tmp_path):
    spec, wh = _toy_warehouse(tmp_path)
    reg = ModelRegistry(tmp_path / "models")
    versions = [train_version(spec, wh, reg).version.version for _ in range(2)]  # same data: equal scores
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_validate_at_once, args=(str(tmp_path), v, barrier, queue)) for v in versions]
    for p in procs:
        p.start()
    outcomes = {v: (promote, text) for v, promote, text in (queue.get(timeout=600) for _ in procs)}
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0]
    assert sum(promote for promote, _ in outcomes.values()) == 1
    listing = reg.list_models()
    assert sorted(listing["status"].to_list()) == ["promoted", "standby"]  # nothing archived: one promotion only
    winner = reg.promoted("toy")["version"]
    loser = next(v for v in versions if v != winner)
    # The loser compared again, with the winner this time, and says so in its report.
    assert f"v{winner} scores" in outcomes[loser][1]
    decisions = [json.loads(p.read_text()) for p in sorted((tmp_path / "models/toy/decisions").iterdir())]
    assert [(d["seq"], d["version"], d["promote"], d["compared_with"]) for d in decisions] == [
        (1, winner, True, None), (2, loser, False, winner),
    ]
