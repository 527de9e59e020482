"""The real assets, materialized in process on a small generated market."""

import json
import logging
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import polars as pl
import pytest

from alevor_assets import compute_features
from alevor_assets.defs.resources import SyntheticSource
from alevor_assets.lib.bars import BAR_SCHEMA
from alevor_assets.lib.features import feature_names
from alevor_assets.lib.schemas import UTC_US
from alevor_assets.lib.sources import TradeBatch
from tests.conftest import START, small_settings, small_source
from tests.helpers import DATA_ASSETS, materialize_range, snapshot

D1, D2, D3 = START, START + timedelta(days=1), START + timedelta(days=2)


class CorruptingSource(SyntheticSource):
    """The synthetic market, with four kinds of bad rows on one day."""

    corrupt_day: str

    def read_trades(self, day: date) -> TradeBatch:
        batch = super().read_trades(day)
        frame = batch.trades
        if day.isoformat() != self.corrupt_day:
            return batch
        bad = frame.head(4).with_columns(
            price=pl.Series([-1.0, float("nan"), 2.0, 3.0]),
            trade_id=pl.Series([frame["trade_id"][10], frame["trade_id"][11], frame["trade_id"][12], frame["trade_id"][13]]),
        )
        outside = pl.lit(datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1, seconds=5)).cast(UTC_US)
        bad = bad.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(outside).otherwise(pl.col("ts")).alias("ts"))
        return TradeBatch(pl.concat([frame, bad]), batch.rejected)


@pytest.fixture
def resources(storage):
    return {"storage": storage, "settings": small_settings(), "source": small_source()}


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_every_layer_has_the_contract_columns_and_types(built, storage):
    wh = storage.warehouse
    assert dict(wh.read_partition("raw_trades", D2).schema) == {
        "token": pl.Utf8, "trade_id": pl.Int64, "ts": UTC_US, "price": pl.Float64, "amount": pl.Float64, "side": pl.Utf8,
    }
    for interval in ("2s", "1m", "5m"):
        bars = wh.read_partition("bars", D2, {"interval": interval})
        assert dict(bars.schema) == BAR_SCHEMA and bars.height > 0
        assert set(bars["interval"]) == {interval}
    feats = wh.read_partition("features", D2, {"interval": "2s"})
    names = feature_names("2s", small_settings().feature_config())
    assert feats.columns == ["token", "interval", "ts", *names]
    assert all(feats.schema[c] == pl.Float64 for c in names)
    # Every family is really computed on the pipeline's data, not left empty.
    for col in ("rsi_14", "return_5m", "rush_trade_share", "mtf_1m_rsi_14", "mtf_5m_return_1", "token_age_hours"):
        assert feats[col].drop_nulls().len() > feats.height // 2, col
    # La Morgia windows need 700+ non-empty chunks of history: values appear once that fills.
    assert feats["lm_5s_avg_volume"].drop_nulls().len() > 0
    dollar = wh.read_partition("bars", D2, {"interval": "dollar_20000"})
    assert dollar.height > 0 and dollar["volume"].sum() == pytest.approx(wh.read_partition("raw_trades", D2)["amount"].sum(), rel=1e-12)
    labels = wh.read_partition("labels_pump_detector_2s", D2)
    assert dict(labels.schema) == {
        "token": pl.Utf8, "interval": pl.Utf8, "ts": UTC_US, "strategy": pl.Utf8, "label": pl.Int64,
        "weight": pl.Float64, "horizon_end": UTC_US,
    }
    assert labels["label"].sum() > 0
    assert dict(wh.read_partition("tokens", D2).schema) == {
        "token": pl.Utf8, "symbol": pl.Utf8, "name": pl.Utf8, "address": pl.Utf8, "created_at": UTC_US,
    }
    assert dict(wh.read_partition("labelled_events", D2).schema) == {
        "token": pl.Utf8, "type": pl.Utf8, "start_time": UTC_US, "end_time": UTC_US, "announced_time": UTC_US,
        "extent": pl.Utf8, "reference_price": pl.Float64, "peak_price": pl.Float64, "rise": pl.Float64,
    }
    ts_rows = wh.read_partition("training_set_pump_detector_2s", D2)
    assert ts_rows.columns[:4] == ["token", "interval", "ts", "spec"] and ts_rows.columns[-3:] == ["label", "weight", "horizon_end"]
    stats = wh.read_partition("token_daily_stats", D2)
    assert stats["trade_count"].sum() == wh.read_partition("raw_trades", D2).height
    # DuckDB views over the Parquet, as DESIGN section 2 describes.
    with storage.catalog.connect(read_only=True) as con:
        n = con.execute("SELECT count(*) FROM bars WHERE interval = '1m' AND date = ?", [D2]).fetchall()[0][0]
    assert n == wh.read_partition("bars", D2, {"interval": "1m"}).height
    # One model version per run, with a report that has the detector metrics.
    assert {"model_pump_detector_2s", "validation_pump_detector_2s"} <= _materialized(built)
    report = (storage.root / "models/pump_detector_2s/v1/report.md").read_text()
    for metric in ("roc_auc", "pr_auc", "precision", "recall", "f1", "event_recall", "detection_delay_s"):
        assert f"| {metric} |" in report


def test_rerunning_a_partition_reproduces_every_file_byte_for_byte(built, resources, instance, storage):
    before = snapshot(storage.warehouse.root)
    again = materialize_range(D2, D2, resources=resources, instance=instance, assets=DATA_ASSETS)
    assert again.success
    assert snapshot(storage.warehouse.root) == before


def test_a_corrupted_partition_fails_its_check_and_changes_nothing(built, resources, instance, storage):
    before = snapshot(storage.warehouse.root)
    bad = {**resources, "source": CorruptingSource(**small_source().model_dump(), corrupt_day=D2.isoformat())}
    result = materialize_range(D2, D2, resources=bad, instance=instance, assets=DATA_ASSETS, raise_on_error=False)
    assert not result.success
    # raw_trades and everything downstream of it (labelled_events reads trades too) stay
    # unmaterialized; only the independent tokens asset ran.
    assert _materialized(result) == {"tokens"}
    [evaluation] = [
        e.event_specific_data for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.asset_key == dg.AssetKey("raw_trades")
    ]
    assert evaluation.check_name == "check_contract" and not evaluation.passed
    failures = evaluation.metadata["failures_json"].value
    named = {(f["column"], f["rule"]) for f in failures}
    assert {("price", "greater_than(0)"), ("price", "not null or NaN"), (None, "unique key"),
            ("ts", "ts within its partition's UTC day")} <= named
    for f in failures:
        assert f["count"] >= 1 and f["examples"], f
    assert snapshot(storage.warehouse.root) == before  # D2's good files and every other day untouched
    quarantined = list((storage.quarantine / "raw_trades").rglob("rows.parquet"))
    assert len(quarantined) == 1 and pl.read_parquet(quarantined[0]).height > 0


def test_features_of_a_partition_equal_one_batch_over_the_three_days(built, resources, instance, storage):
    wh = storage.warehouse
    # Rebuild D2 alone: its warm-up comes from the published D1 partitions.
    result = materialize_range(D2, D2, resources=resources, instance=instance, selection=["features"], assets=DATA_ASSETS)
    assert result.success
    config = small_settings().feature_config()
    tokens = wh.read_partition("tokens", D2)
    trades = pl.concat([wh.read_partition("raw_trades", d) for d in (D1, D2, D3)])
    all_bars = pl.concat([wh.read_partition("bars", d, {"interval": i}) for d in (D1, D2, D3) for i in ("2s", "1m", "5m")])
    for interval in ("2s", "1m"):
        part = wh.read_partition("features", D2, {"interval": interval})
        batch = compute_features(all_bars, interval, tokens=tokens, trades=trades, config=config)
        batch = batch.filter(pl.col("ts").dt.date() == D2)
        assert part.equals(batch), interval


def test_missing_upstream_partition_is_a_clear_failure(resources, instance):
    result = materialize_range(D2, D2, resources=resources, instance=instance, selection=["bars"], assets=DATA_ASSETS, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "raw_trades has no published partition for 2024-01-02" in failure.event_specific_data.error.to_string()


def test_a_day_without_its_own_inputs_is_not_built_and_says_what_it_waits_for(resources, instance, storage):
    # Labels of D3 read D3's bars and the head of D4; a run over D1..D3 when D3 has no bars yet
    # builds D1 and D2, changes nothing for D3 and says why.
    assert materialize_range(D1, D2, resources=resources, instance=instance,
                             selection=["raw_trades", "tokens", "labelled_events", "bars"], assets=DATA_ASSETS).success
    result = materialize_range(D1, D3, resources=resources, instance=instance, selection=["features", "labels_pump_detector_2s"],
                               assets=DATA_ASSETS)
    assert result.success
    for asset in ("features", "labels_pump_detector_2s"):
        [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset][:1]
        not_built = event.materialization.metadata["not_built"].value
        assert set(not_built) == {D3.isoformat()} and "no published bars, interval=" in not_built[D3.isoformat()]
        built = {key.split()[0] for key in event.materialization.metadata["rows_by_partition"].value}
        assert built == {D1.isoformat(), D2.isoformat()}, asset
    assert storage.warehouse.available_days("features", {"interval": "2s"}) == [D1, D2]
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert any(f"features {D3.isoformat()} not built: no published bars, interval=2s" in m for m in warnings), warnings

    # Asked for D3 alone outside a backfill, there is nothing to build: a clear failure naming the input.
    result = materialize_range(D3, D3, resources=resources, instance=instance, selection=["features"], assets=DATA_ASSETS,
                               raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "2024-01-03: no published bars, interval=2s" in failure.event_specific_data.error.to_string()
    assert "materialize it first" in failure.event_specific_data.error.to_string()


def test_each_materialization_carries_what_the_ui_shows(built, storage):
    events = {e.asset_key.to_user_string(): e.materialization.metadata for e in built.get_asset_materialization_events()}
    for asset in ("raw_trades", "bars", "features", "labels_pump_detector_2s", "training_set_pump_detector_2s"):
        meta = events[asset]
        rows = meta["rows_by_partition"].value
        assert meta["dagster/row_count"].value == sum(rows.values()) > 0, asset
        assert {key.split()[0] for key in rows} == {D1.isoformat(), D2.isoformat(), D3.isoformat()}, asset
        assert meta["tokens"].value > 0, asset
        assert meta["first_ts"].value.startswith(D1.isoformat()) and meta["last_ts"].value.startswith(D3.isoformat()), asset
        assert meta["preview"].value.startswith("|"), asset  # a Markdown table
    traded = pl.concat([storage.warehouse.read_partition("raw_trades", d) for d in (D1, D2, D3)])["token"].n_unique()
    assert events["raw_trades"]["tokens"].value == traded
    validation = events["validation_pump_detector_2s"]
    metrics = validation["metrics"].value
    assert {"roc_auc", "pr_auc", "event_recall", "event_recall_timely", "false_alerts_per_token_day"} <= set(metrics)
    report = validation["report"].value
    assert "| metric | value |" in report and report.count("data:image/png;base64,") >= 2
    # Every test event is listed with its first alert and delay, and every fold with its threshold,
    # chosen by the spec's rule in each fold as in the final fit.
    detection = report.split("## Detection (test fold, per event)")[1].split("\n## ")[0]
    assert "| token | announced | extent | first_alert | delay_s | outcome |" in detection
    listed = [line for line in detection.splitlines() if line.startswith("| ") and not line.startswith("| token")]
    assert len(listed) == metrics["events"] + metrics["events_not_counted"] > 0
    assert sum("| detected |" in line for line in listed) == metrics["events_detected"]
    walk = validation["walk_forward"].value
    assert len(walk["folds"]) == 3 and all(f["threshold_rule"] == "false_alert_budget" for f in walk["folds"])
    assert "| fold | test_start | test_end | train_rows | test_rows | threshold | events | events_detected |" in report
    assert "## Walk-forward events" in report and "across folds" in report
    meta = json.loads((storage.root / "models/pump_detector_2s/v1/metadata.json").read_text())
    assert meta["threshold_rule"]["rule"] == "false_alert_budget" and meta["threshold"] == metrics["threshold"]
