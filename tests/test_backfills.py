"""Four backfills over different date ranges launched at once, executed by a real dagster-daemon in separate
run processes that all write the same DuckDB file and warehouse: every run succeeds (no DuckDB lock error),
every partition is published and the registry gains one model version per backfill."""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from alevor_assets.defs.resources import AlevorStorage
from tests.conftest import SMALL_PIPELINE, cli_env, dagster_services, graphql

pytestmark = pytest.mark.slow

PARTITIONED = ["raw_trades", "tokens", "labelled_events", "bars", "features", "labels_pump_detector_2s", "training_set_pump_detector_2s",
               "token_daily_stats"]
SELECTION = PARTITIONED + ["model_pump_detector_2s", "validation_pump_detector_2s"]
RANGES = [(date(2024, 1, 1) + timedelta(days=2 * i), date(2024, 1, 2) + timedelta(days=2 * i)) for i in range(4)]

LAUNCH = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill {
  status runs { runId status startTime endTime assetSelection { path } } } } }"""


def days(start: date, end: date) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def test_four_backfills_started_at_once_all_succeed(tmp_path: Path):
    env = cli_env(tmp_path, ALEVOR_PIPELINE=str(SMALL_PIPELINE))
    with dagster_services(tmp_path, env, daemon=True, backfill_tick_seconds=2) as url:
        backfill_ids = []
        for start, end in RANGES:
            params = {"assetSelection": [{"path": [key]} for key in SELECTION], "partitionNames": days(start, end),
                      "title": f"{start}..{end}"}
            launched = graphql(url, LAUNCH, {"params": params})["launchPartitionBackfill"]
            assert launched["__typename"] == "LaunchBackfillSuccess", launched
            backfill_ids.append(launched["backfillId"])

        deadline = time.monotonic() + 900
        while True:
            states = {bid: graphql(url, STATUS, {"id": bid})["partitionBackfillOrError"] for bid in backfill_ids}
            if all(s["status"] not in ("REQUESTED", "CANCELING", "FAILING") for s in states.values()):
                break
            assert time.monotonic() < deadline, {b: s["status"] for b, s in states.items()}
            time.sleep(2)

    daemon_log = (tmp_path / "daemon.log").read_text()
    runs = [run for state in states.values() for run in state["runs"]]
    for bid, state in states.items():
        assert state["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), (bid, state, daemon_log[-3000:])
        assert state["runs"] and all(run["status"] == "SUCCESS" for run in state["runs"]), state
    assert "Could not set lock" not in daemon_log and "database is locked" not in daemon_log

    # The test is only worth something if runs from different backfills really overlapped in time.
    spans = sorted((r["startTime"], r["endTime"]) for r in runs)
    overlaps = sum(1 for (s1, e1), (s2, _) in zip(spans, spans[1:]) if s2 < e1)
    assert overlaps >= 1, spans

    storage = AlevorStorage(home=env["ALEVOR_HOME"])
    every_day = days(RANGES[0][0], RANGES[-1][1])
    for key in ("raw_trades", "tokens", "labelled_events", "token_daily_stats"):
        published = sorted(p.name.removeprefix("date=") for p in (storage.root / "warehouse" / key).glob("date=*"))
        assert published == every_day, key
    versions = storage.registry.list_models().filter(name="pump_detector_2s")
    assert sorted(versions["version"].to_list()) == [1, 2, 3, 4]
