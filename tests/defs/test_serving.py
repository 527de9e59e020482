"""Promoted models at work: predictions, parity with the public scoring function, fallback, rescoring."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG
import polars as pl
import pytest

from alevor_assets import score
from alevor_assets.defs.modeling.predictions import LIVE_DRIFT_CHECK, SERVED_CHECK
from alevor_assets.defs.modeling.assets import build_spec_assets
from alevor_assets.lib.serving import fallback_predictions, load_serving_model, predictions
from tests.conftest import START, small_settings, small_source
from tests.helpers import ALL_ASSETS, DATA_ASSETS, PUMP_SPEC, materialize_range

D1, D2, D3 = START, START + timedelta(days=1), START + timedelta(days=2)
PREDICTIONS = f"predictions_{PUMP_SPEC.name}"


@pytest.fixture
def resources(storage):
    return {"storage": storage, "settings": small_settings(), "source": small_source()}


@pytest.fixture
def built_here(resources, instance) -> dg.ExecuteInProcessResult:
    """The same build in this test's own Dagster instance, for tests that rescore: the predictions
    asset serves the version Dagster recorded as promoted."""
    result = materialize_range(D1, D3, resources=resources, instance=instance)
    assert result.success
    return result


def _checks(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    return {
        e.event_specific_data.check_name: e.event_specific_data for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.asset_key.to_user_string() == asset
    }


def test_a_promoted_model_scores_every_day_and_the_partition_records_its_version(built, storage):
    promoted = storage.registry.promoted(PUMP_SPEC.name)
    assert promoted["version"] == 1
    for day in (D1, D2, D3):
        frame = storage.warehouse.read_partition(PREDICTIONS, day)
        feats = storage.warehouse.read_partition("features", day, {"interval": "2s"})
        assert frame.height == feats.height > 0
        assert frame["source"].unique().to_list() == ["model"] and frame["version"].unique().to_list() == [1]
        assert frame["score"].is_between(0, 1).all() and set(frame["predicted"].unique()) <= {0, 1}
    events = [e for e in built.get_asset_materialization_events() if e.asset_key.to_user_string() == PREDICTIONS]
    assert {e.partition for e in events} == {D1.isoformat(), D2.isoformat(), D3.isoformat()}
    meta = events[0].materialization.metadata
    assert meta["promoted_version"].value == 1
    monitoring = meta["monitoring"].value
    assert set(monitoring) == {D1.isoformat(), D2.isoformat(), D3.isoformat()}
    assert monitoring[D2.isoformat()]["scores"]["scored"] > 0 and monitoring[D2.isoformat()]["drift"]["score_psi"] is not None
    checks = _checks(built, PREDICTIONS)
    assert checks[SERVED_CHECK].passed and LIVE_DRIFT_CHECK in checks


def test_the_public_scoring_function_gives_exactly_the_assets_scores(built, storage):
    wh = storage.warehouse
    bars = pl.concat([wh.read_partition("bars", d, {"interval": i}) for d in (D1, D2, D3) for i in ("2s", "1m", "5m")])
    trades = pl.concat([wh.read_partition("raw_trades", d) for d in (D1, D2, D3)])
    tokens = wh.read_partition("tokens", D2)
    scored = score(PUMP_SPEC, bars, trades=trades, tokens=tokens, config=small_settings().feature_config(), home=storage.root)
    mine = scored.filter(pl.col("ts").dt.date() == D2)
    asset = wh.read_partition(PREDICTIONS, D2)
    assert mine.height == asset.height > 0
    assert mine.equals(asset.select(mine.columns))
    # The same through a model you pass yourself.
    model = load_serving_model(storage.registry, PUMP_SPEC.name, 1)
    given = score(PUMP_SPEC, bars, model, trades=trades, tokens=tokens, config=small_settings().feature_config())
    assert given.filter(pl.col("ts").dt.date() == D2).equals(asset.select(mine.columns))


def test_without_a_promoted_version_the_fallback_scores_and_the_check_warns(resources, instance, storage):
    result = materialize_range(D1, D2, resources=resources, instance=instance,
                               assets=[*DATA_ASSETS, *[a for a in ALL_ASSETS if dg.AssetKey(PREDICTIONS) in a.keys]])
    assert result.success
    frame = storage.warehouse.read_partition(PREDICTIONS, D2)
    assert frame["source"].unique().to_list() == ["fallback"] and frame["version"].null_count() == frame.height
    assert frame["reason"].unique().to_list() == [f"no model to serve: {PUMP_SPEC.name} has no promoted version yet"]
    # The pump rule: 1 exactly where the 5-minute return and the volume z-score both clear it.
    feats = storage.warehouse.read_partition("features", D2, {"interval": "2s"})
    rule = ((feats["return_5m"] >= 0.05) & (feats["volume_zscore_15"] >= 3.0)).cast(pl.Float64)
    assert frame["score"].equals(rule.alias("score"))
    check = _checks(result, PREDICTIONS)[SERVED_CHECK]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert set(check.metadata["fallback_rows_by_day"].value) == {D1.isoformat(), D2.isoformat()}


def test_a_tampered_promoted_artifact_gives_fallback_rows_not_a_crash(built_here, resources, instance, storage):
    artifact = Path(storage.registry.promoted(PUMP_SPEC.name)["artifact_path"])
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    result = materialize_range(D3, D3, resources=resources, instance=instance, selection=[PREDICTIONS])
    assert result.success
    frame = storage.warehouse.read_partition(PREDICTIONS, D3)
    assert frame["source"].unique().to_list() == ["fallback"]
    assert "failed its integrity check" in frame["reason"][0] and "refusing to load" in frame["reason"][0]
    assert not _checks(result, PREDICTIONS)[SERVED_CHECK].passed


def test_a_drifted_day_makes_the_live_drift_check_warn(built_here, resources, instance, storage):
    def rescored() -> dg.AssetCheckEvaluation:
        result = materialize_range(D3, D3, resources=resources, instance=instance, selection=[PREDICTIONS])
        assert result.success  # drift is a warning, never a failed run
        return _checks(result, PREDICTIONS)[LIVE_DRIFT_CHECK]

    path = storage.warehouse.partition_path("features", D3, {"interval": "2s"})
    feats = pl.read_parquet(path)
    rates = [c for c in feats.columns if c.startswith(("volume_rate", "quote_volume_rate", "trade_rate"))]
    before = rescored().metadata["drift_by_day"].value[D3.isoformat()]["top_feature_psi"]
    # A market that moved: every volume and trade rate ten times what the model was trained on.
    feats.with_columns([pl.col(c) * 10 for c in rates]).write_parquet(path)
    check = rescored()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN and D3.isoformat() in check.description
    after = check.metadata["drift_by_day"].value[D3.isoformat()]["top_feature_psi"]
    moved = {c: v for c, v in after.items() if c in rates}
    assert moved and min(moved.values()) > PUMP_SPEC.drift_psi_threshold
    assert all(v > before.get(c, 0.0) for c, v in moved.items())


def test_missing_features_or_no_rule_fall_back_with_the_reason(built, storage):
    feats = storage.warehouse.read_partition("features", D2, {"interval": "2s"})
    model = load_serving_model(storage.registry, PUMP_SPEC.name, 1)
    dropped = feats.drop("rsi_14")
    out = predictions(PUMP_SPEC, dropped, lambda: model)
    assert out["source"].unique().to_list() == ["fallback"] and "rsi_14" in out["reason"][0]
    # A spec declaring no fallback gives null scores, marked so, never a silent gap.
    none = replace(PUMP_SPEC, serving=replace(PUMP_SPEC.serving, fallback="none", fallback_params={}))
    out = fallback_predictions(none, feats, "no model to serve")
    assert out.height == feats.height and out["score"].null_count() == out.height
    assert out["reason"].unique().to_list() == ["no model to serve"]
    # A rule that needs a feature that is not there says so too.
    out = fallback_predictions(PUMP_SPEC, feats.drop("return_5m"), "no model to serve")
    assert out["score"].null_count() == out.height and "needs missing feature(s) ['return_5m']" in out["reason"][0]


def test_a_promotion_rescores_only_the_days_the_spec_asks_for_and_only_once(resources):
    spec = replace(PUMP_SPEC, serving=replace(PUMP_SPEC.serving, rescore_days=2))
    assets = [*DATA_ASSETS[:-2], *build_spec_assets(spec)]
    key = dg.AssetKey(PREDICTIONS)
    defs = dg.Definitions(assets=assets, resources=resources)
    # Evaluated as if it were the morning after D3: D3 is the newest complete partition.
    now = datetime(D3.year, D3.month, D3.day, tzinfo=timezone.utc) + timedelta(days=1, hours=6)

    def evaluate(instance, cursor):
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor, evaluation_time=now)
        return result.cursor, result.get_requested_partitions(key)

    with dg.instance_for_test() as instance:
        for day in (D1, D2, D3):
            instance.report_runless_asset_event(dg.AssetMaterialization("features", partition=day.isoformat()))
        cursor, requested = evaluate(instance, None)
        for day in requested:  # new features are scored
            instance.report_runless_asset_event(dg.AssetMaterialization(PREDICTIONS, partition=day))
        cursor, requested = evaluate(instance, cursor)
        assert requested == set()
        def promoted(version: int) -> None:  # what promoted_model_<spec> records after each validation
            instance.report_runless_asset_event(dg.AssetMaterialization(
                f"promoted_model_{spec.name}", metadata={"version": version}, tags={DATA_VERSION_TAG: f"v{version}"}))

        promoted(2)
        cursor, requested = evaluate(instance, cursor)
        assert requested == {D2.isoformat(), D3.isoformat()}  # the newest two days, not D1
        for day in requested:
            instance.report_runless_asset_event(dg.AssetMaterialization(PREDICTIONS, partition=day))
        for _ in range(2):
            cursor, requested = evaluate(instance, cursor)
            assert requested == set()
        promoted(2)  # a later validation that promoted nothing new: no rescoring
        cursor, requested = evaluate(instance, cursor)
        assert requested == set()
        promoted(3)
        cursor, requested = evaluate(instance, cursor)
        assert requested == {D2.isoformat(), D3.isoformat()}


def test_predict_reads_a_range_and_scores_another_version_without_storing_it(built, storage, monkeypatch, tmp_path, capsys):
    from alevor_assets.cli import main

    monkeypatch.setenv("ALEVOR_HOME", str(storage.root))
    out = tmp_path / "p.parquet"
    assert main(["predict", "--spec", PUMP_SPEC.name, "--start", D2.isoformat(), "--end", D3.isoformat(), "--output", str(out)]) == 0
    stored = pl.concat([storage.warehouse.read_partition(PREDICTIONS, d) for d in (D2, D3)]).sort("ts", "token")
    assert pl.read_parquet(out).equals(stored)
    before = storage.warehouse.read_partition(PREDICTIONS, D2)
    csv = tmp_path / "v1.csv"
    assert main(["predict", "--spec", PUMP_SPEC.name, "--start", D2.isoformat(), "--end", D2.isoformat(),
                 "--version", "1", "--output", str(csv)]) == 0
    again = pl.read_csv(csv)
    assert again.height == before.height and again["version"].unique().to_list() == [1]
    assert storage.warehouse.read_partition(PREDICTIONS, D2).equals(before)  # nothing written
    assert main(["predict", "--spec", "no_such_spec", "--start", D2.isoformat(), "--end", D2.isoformat()]) == 2
    assert "unknown spec 'no_such_spec'" in capsys.readouterr().err


def test_detector_alerts_by_hand_per_row_thresholds_and_an_episode_across_midnight():
    from alevor_assets.lib.alerts import detector_alerts

    def t(day: int, minute: float) -> datetime:
        return datetime(2024, 1, day, tzinfo=timezone.utc) + timedelta(minutes=minute)

    preds = pl.DataFrame({
        "token": ["A"] * 6 + ["B"] * 2,
        "ts": [t(1, 1430), t(1, 1439), t(2, 3), t(2, 20), t(2, 21), t(2, 40), t(2, 5), t(2, 6)],
        "score": [0.9, 0.8, 0.95, 0.3, 0.9, 0.7, 0.4, 0.6],
        "version": [1, 1, 1, 2, 2, None, 2, 2],
    }).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")), pl.col("version").cast(pl.Int64))
    # v1 alerts at 0.5, v2 at 0.85, fallback rows (no version) at 0.5; a 15-minute cooldown.
    fired = detector_alerts(preds, timedelta(minutes=1), timedelta(minutes=15), {1: 0.5, 2: 0.85})
    got = list(zip(fired["token"], fired["ts"].dt.strftime("%d %H:%M")))
    # A: 23:50 alerts; 23:59 and 00:03 are inside its cooldown (one episode across midnight); 00:20 is
    # below v2's 0.85; 00:21 alerts (more than 15 min after 23:51); 00:40 (fallback, 0.7 >= 0.5)
    # alerts again. B: 0.4 and 0.6 are both below v2's threshold.
    assert got == [("A", "01 23:50"), ("A", "02 00:21"), ("A", "02 00:40")]
    assert fired["threshold"].to_list() == [0.5, 0.85, 0.5]
    assert (fired["alerted_at"] - fired["ts"]).unique().to_list() == [timedelta(minutes=1)]


def test_the_alerts_asset_lists_each_episode_once_with_its_reasons(built, storage):
    cooldown = PUMP_SPEC.alerts.cooldown
    alerts = pl.concat([storage.warehouse.read_partition("alerts", d) for d in (D1, D2, D3)])
    assert alerts.height > 0 and set(alerts["spec"]) == {PUMP_SPEC.name}
    assert (alerts["score"] >= alerts["threshold"]).all() and alerts["source"].unique().to_list() == ["model"]
    assert alerts["top_features"].str.len_chars().min() > 0
    for _, group in alerts.sort("alerted_at").group_by("token"):
        gaps = group["alerted_at"].diff().drop_nulls()
        assert (gaps >= cooldown).all()
    # Every alert is a prediction row at or above the model's threshold.
    preds = pl.concat([storage.warehouse.read_partition(PREDICTIONS, d) for d in (D1, D2, D3)])
    joined = alerts.join(preds, on=["token", "ts"], suffix="_p")
    assert joined.height == alerts.height and (joined["score"] == joined["score_p"]).all()
    with storage.catalog.connect(read_only=True) as con:
        n = con.execute("SELECT count(*) FROM alerts WHERE spec = ?", [PUMP_SPEC.name]).fetchall()[0][0]
    assert n == alerts.height


def test_one_predictions_view_unions_every_spec(built, storage):
    root = storage.warehouse.asset_dir(PREDICTIONS).parent
    expected = {
        d.name.removeprefix("predictions_"): pl.read_parquet(d / "**" / "*.parquet").height
        for d in root.iterdir() if d.name.startswith("predictions_")
    }
    assert PUMP_SPEC.name in expected and sum(expected.values()) > 0
    with storage.catalog.connect() as con:
        counts = dict(con.execute("SELECT spec, count(*) FROM predictions GROUP BY spec").fetchall())
    assert counts == {k: v for k, v in expected.items() if v}


def test_the_alerts_command_prints_and_writes_them(built, storage, monkeypatch, tmp_path, capsys):
    from alevor_assets.cli import main

    monkeypatch.setenv("ALEVOR_HOME", str(storage.root))
    assert main(["alerts", "--start", D1.isoformat(), "--end", D3.isoformat()]) == 0
    total = sum(storage.warehouse.read_partition("alerts", d).height for d in (D1, D2, D3))
    assert f"{total} alert(s) {D1}...{D3}" in capsys.readouterr().out
    out = tmp_path / "a.csv"
    assert main(["alerts", "--start", D2.isoformat(), "--end", D2.isoformat(), "--spec", PUMP_SPEC.name, "--output", str(out)]) == 0
    assert pl.read_csv(out).height == storage.warehouse.read_partition("alerts", D2).height
