"""New trades in the real PostgreSQL flow through the sensor and the automation conditions."""

import json
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import psycopg2
import pytest

from alevor_assets.defs.features.assets import features
from alevor_assets.defs.market_data.assets import bars, labelled_events, raw_trades, tokens
from alevor_assets.defs.market_data.sensors import new_trades_sensor
from alevor_assets.defs.modeling.assets import build_spec_assets
from alevor_assets.defs.resources import PostgresSource
from alevor_assets.lib import synthetic
from alevor_assets.lib.sources.pg_sample import load_sample
from tests.conftest import small_settings
from tests.helpers import PUMP_SPEC

D1 = date(2024, 1, 1)
DAYS = [D1 + timedelta(days=i) for i in range(3)]
CFG = synthetic.SyntheticConfig(seed=5, tokens=6, trades_per_token_day=700, launch_start=D1, launch_window_days=2, pumps_per_token_day=1.5)


def _tick(source, cursor=None, built=()):
    with dg.instance_for_test() as instance:
        for day in built:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="raw_trades", partition=day))
        ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"source": source})
        return new_trades_sensor(ctx)


def _late_trade(url: str, day: date, trade_id: int) -> None:
    """A trade committed late: a smaller id than any existing one, early in an old day."""
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute('SELECT id FROM "Token" ORDER BY id LIMIT 1')
        token_id = cur.fetchone()[0]
        cur.execute(
            'INSERT INTO "Trade" (id, "tokenId", price, amount, type, timestamp) VALUES (%s, %s, 1.0, 2.0, %s, %s)',
            [trade_id, token_id, "buy", datetime(day.year, day.month, day.day, 0, 0, 1, tzinfo=timezone.utc)],
        )
    conn.close()


def test_sensor_requests_exactly_the_changed_days_and_nothing_twice(pg_database):
    load_sample(pg_database, CFG, D1, 3)
    source = PostgresSource(url=pg_database)
    first = _tick(source)
    assert [r.partition_key for r in first.run_requests] == [d.isoformat() for d in DAYS]
    assert {tuple(k.path) for r in first.run_requests for k in r.asset_selection} == {("raw_trades",), ("tokens",), ("labelled_events",)}
    assert len({r.run_key for r in first.run_requests}) == 3
    stored = first.cursor
    assert set(json.loads(stored)["days"]) == {d.isoformat() for d in DAYS}
    # Nothing new: nothing requested, cursor unchanged.
    quiet = _tick(source, stored)
    assert quiet.run_requests == [] and quiet.cursor == stored
    _late_trade(pg_database, DAYS[1], trade_id=-7)
    late = _tick(source, stored)
    assert [r.partition_key for r in late.run_requests] == [DAYS[1].isoformat()]
    # A tick that crashed before its cursor was stored is repeated: the same run key, which the
    # daemon never launches twice.
    repeated = _tick(source, stored)
    assert [r.run_key for r in repeated.run_requests] == [r.run_key for r in late.run_requests]
    # After a restart from the stored cursor: nothing twice.
    assert _tick(source, late.cursor).run_requests == []


def _execute(requests, assets, resources, instance):
    for req in requests:
        result = dg.materialize(
            assets, instance=instance, resources=resources, selection=req.asset_selection,
            partition_key=req.partition_key, tags=dict(req.tags or {}),
        )
        assert result.success


def _requests(result, keys) -> list[dg.RunRequest]:
    """The tick's requests as runs: one per partition day (oldest first), then the unpartitioned."""
    by_partition: dict[str | None, list[dg.AssetKey]] = {}
    for key in keys:
        for partition in result.get_requested_partitions(key):
            by_partition.setdefault(partition, []).append(key)
    ordered = sorted((p for p in by_partition if p is not None)) + ([None] if None in by_partition else [])
    return [dg.RunRequest(asset_selection=by_partition[p], partition_key=p) for p in ordered]


def _automate(defs, assets, resources, instance, cursor=None, rounds=12):
    """The automation sensor's loop, in process: evaluate, run what it asks for, repeat."""
    keys = list(defs.resolve_asset_graph().get_all_asset_keys())
    launched = []
    for _ in range(rounds):
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = result.cursor
        requests = _requests(result, keys)
        if not requests:
            return cursor, launched
        launched += requests
        _execute(requests, assets, resources, instance)
    raise AssertionError("automation did not settle")


@pytest.mark.slow
def test_new_trades_rebuild_affected_partitions_and_retrain_the_model_once(pg_database, storage):
    load_sample(pg_database, CFG, D1, 3)
    source = PostgresSource(url=pg_database, events="table:LabelledEvent")
    resources = {"storage": storage, "settings": small_settings(), "source": source}
    spec = replace(PUMP_SPEC, walk_forward_folds=0)
    assets = [tokens, labelled_events, raw_trades, bars, features, *build_spec_assets(spec)]
    defs = dg.Definitions(assets=assets, resources=resources, sensors=[new_trades_sensor])
    registry = storage.registry
    with dg.instance_for_test() as instance:
        # The automation sensor starts before any data exists (its first tick is a baseline).
        cursor, launched = _automate(defs, assets, resources, instance)
        assert launched == []
        # The trades sensor asks for every day; automation builds the rest and trains v1.
        first = _tick(source)
        _execute(first.run_requests, assets, resources, instance)
        cursor, launched = _automate(defs, assets, resources, instance, cursor)
        assert registry.list_models()["version"].to_list() == [1]
        # A late trade lands in an already processed day.
        _late_trade(pg_database, DAYS[1], trade_id=-11)
        late = _tick(source, first.cursor)
        assert [r.partition_key for r in late.run_requests] == [DAYS[1].isoformat()]
        before = instance.get_runs_count()
        _execute(late.run_requests, assets, resources, instance)
        cursor, launched = _automate(defs, assets, resources, instance, cursor)
        rebuilt = {(k.to_user_string(), r.partition_key) for r in launched for k in r.asset_selection}
        # The changed day and the partitions that read it: bars and its features, the labels of
        # the day before (their horizon reaches into it). The next day's warm-up is untracked context.
        for key in [("bars", "2024-01-02"), ("features", "2024-01-02"), ("labels_pump_detector_2s", "2024-01-02"), ("labels_pump_detector_2s", "2024-01-01"),
                    ("training_set_pump_detector_2s", "2024-01-02"), ("training_set_pump_detector_2s", "2024-01-01")]:
            assert key in rebuilt, (key, sorted(rebuilt))
        for key in [("bars", "2024-01-03"), ("features", "2024-01-03"), ("raw_trades", "2024-01-01"), ("features", "2024-01-01")]:
            assert key not in rebuilt, key
        models = [r for r in launched for k in r.asset_selection if k.to_user_string() == f"model_{spec.name}"]
        assert len(models) == 1  # once for the whole batch of changed partitions
        assert registry.list_models()["version"].to_list() == [1, 2]
        assert instance.get_runs_count() > before
        # Quiet again: nothing more to do.
        assert _automate(defs, assets, resources, instance, cursor)[1] == []


def test_files_sensor_requests_the_days_of_new_or_changed_files_only(tmp_path):
    from alevor_assets.defs.resources import FilesSource

    data = tmp_path / "trades"
    data.mkdir()
    day_ms = [int(datetime(2024, 3, d, tzinfo=timezone.utc).timestamp() * 1000) for d in (1, 2, 3)]

    def write(name: str, *starts_ms: int) -> None:
        lines = [f"{1000 + i},{100 + i * 0.5},1,{5000 + i},{5000 + i},{start + i * 60_000},true,true"
                 for start in starts_ms for i in range(5)]
        (data / name).write_text("\n".join(lines) + "\n")

    write("BTCUSDT-aggTrades-2024-03-01.csv", day_ms[0])
    # One file spanning two days (the last minutes of 03-01 and 03-02).
    write("ETHUSDT-aggTrades-2024-03-02.csv", day_ms[1] - 120_000, day_ms[1] + 3_600_000)
    source = FilesSource(pattern=str(data / "*.csv"))

    first = _tick(source)
    assert [r.partition_key for r in first.run_requests] == ["2024-03-01", "2024-03-02"]
    # A sensor first started on an instance that already built a day asks only for the others.
    late_start = _tick(source, built=["2024-03-01"])
    assert [r.partition_key for r in late_start.run_requests] == ["2024-03-02"]
    assert late_start.cursor == first.cursor
    assert _tick(source, first.cursor).run_requests == []
    # A new file for a new day: only that day.
    write("BTCUSDT-aggTrades-2024-03-03.csv", day_ms[2])
    added = _tick(source, first.cursor)
    assert [r.partition_key for r in added.run_requests] == ["2024-03-03"]
    # A corrected file (same name, new content): the days it holds.
    write("ETHUSDT-aggTrades-2024-03-02.csv", day_ms[1] - 60_000, day_ms[1] + 7_200_000)
    changed = _tick(source, added.cursor)
    assert [r.partition_key for r in changed.run_requests] == ["2024-03-01", "2024-03-02"]
    assert _tick(source, changed.cursor).run_requests == []
    # The synthetic source never changes; the sensor says so.
    from tests.conftest import small_source

    with dg.instance_for_test() as instance:
        skipped = new_trades_sensor(dg.build_sensor_context(instance=instance, resources={"source": small_source()}))
    assert isinstance(skipped, dg.SkipReason) and "no change feed" in skipped.skip_message


def test_every_sensor_and_schedule_ships_stopped_and_each_spec_has_its_schedule():
    from alevor_assets.lib.specs import model_specs
    from alevor_assets.definitions import defs as load

    defs = load()
    sensors = {s.name: s for s in defs.sensors}
    schedules = {s.name: s for s in defs.schedules}
    assert {"new_trades_sensor", "automation_sensor"} <= set(sensors)
    assert set(schedules) == {f"retrain_{spec.name}_schedule" for spec in model_specs()}
    for item in [*sensors.values(), *schedules.values()]:
        assert item.default_status.value == "STOPPED", item.name


def test_a_failed_drift_check_retrains_the_model_exactly_once_and_a_passing_one_never():
    """The retrain condition of every model asset, on a drift asset whose check result we set."""
    from alevor_assets.defs.automation import retrain_when_needed
    from alevor_assets.defs.modeling.checks import DRIFT_CHECK

    drift_passes = {"value": False}

    @dg.asset(name="drift_toy", check_specs=[dg.AssetCheckSpec(DRIFT_CHECK, asset="drift_toy")])
    def drift_toy() -> dg.MaterializeResult:
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(
            check_name=DRIFT_CHECK, passed=drift_passes["value"], severity=dg.AssetCheckSeverity.WARN)])

    @dg.asset(name="model_toy", deps=[drift_toy], automation_condition=retrain_when_needed(drift_toy.key))
    def model_toy() -> None:
        return None

    defs = dg.Definitions(assets=[drift_toy, model_toy])
    with dg.instance_for_test() as instance:

        def evaluate(cursor):
            result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
            return result.cursor, result.get_num_requested(model_toy.key)

        cursor, n = evaluate(None)
        assert n == 0
        assert dg.materialize([drift_toy], instance=instance).success  # drift check fails
        cursor, n = evaluate(cursor)
        assert n == 1
        assert dg.materialize([drift_toy, model_toy], instance=instance, selection=[model_toy.key]).success
        for _ in range(3):  # handled: never again for the same failure
            cursor, n = evaluate(cursor)
            assert n == 0
        drift_passes["value"] = True
        assert dg.materialize([drift_toy], instance=instance).success
        cursor, n = evaluate(cursor)
        assert n == 0
        # A run that trains the model itself (drift and model together) does not retrain it again.
        drift_passes["value"] = False
        assert dg.materialize([drift_toy, model_toy], instance=instance).success
        cursor, n = evaluate(cursor)
        assert n == 0
