"""Runs that die are seen as dead: kill -9 a run's worker together with the code server that
started it and the daemon (what a crashed ``dagster dev`` or machine does); once the daemon is
back, run monitoring marks the run failed and ``run_retries`` runs it again, which publishes the
days. (A run worker killed alone is noticed by its code server, Dagster's own mechanism.)"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tests.conftest import cli_env, dagster_services, graphql

pytestmark = pytest.mark.slow

LAUNCH = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""


def _instance(env: dict[str, str]) -> dg.DagsterInstance:
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    return dg.DagsterInstance.get()


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        if (record.dagster_event.message or "").startswith("Started process for run"):
            return int(record.dagster_event.event_specific_data.metadata["pid"].value)
    return None


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def _daemon_pid(dagster_home: str) -> int:
    for entry in os.listdir("/proc"):
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if b"dagster-daemon" in cmd and f"DAGSTER_HOME={dagster_home}".encode() in environ:
            return int(entry)
    raise AssertionError("no daemon")


def test_a_killed_run_is_marked_failed_and_retried(tmp_path: Path, monkeypatch):
    overlay = tmp_path / "big_market.yaml"
    # A market large enough that the run is still working when it is killed (the test checks that
    # it was: the run is still STARTED once its processes are gone).
    overlay.write_text("synthetic:\n  tokens: 200\n  trades_per_token_day: 3000\n")
    env = cli_env(tmp_path, ALEVOR_PIPELINE=str(overlay))
    settings = yaml.safe_load((Path(env["DAGSTER_HOME"]) / "dagster.yaml").read_text())
    assert settings["run_monitoring"]["enabled"] and settings["run_retries"]["enabled"]
    settings["run_monitoring"]["poll_interval_seconds"] = 2  # check often, for the test's sake
    (Path(env["DAGSTER_HOME"]) / "dagster.yaml").write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    with dagster_services(tmp_path, env, daemon=True) as url:
        params = {"assetSelection": [{"path": ["raw_trades"]}], "partitionNames": ["2024-01-01", "2024-01-02", "2024-01-03"]}
        launched = graphql(url, LAUNCH, {"params": params})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        instance = _instance(env)
        deadline = time.monotonic() + 300
        while True:
            runs = instance.get_runs()
            started = runs and runs[0].status == dg.DagsterRunStatus.STARTED
            pid = _worker_pid(instance, runs[0].run_id) if started else None
            if pid:
                break
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.2)
        killed = runs[0]
        # The whole process tree dies at once, as when the machine or `dagster dev` is killed: the
        # run worker, the code server that started it and the daemon.
        daemon = _daemon_pid(env["DAGSTER_HOME"])
        victims, up = [daemon, pid], _parent(pid)
        while up not in (daemon, 1):
            victims.append(up)  # the code server(s) between the daemon and the run worker
            up = _parent(up)
        assert up == daemon
        for victim in victims:
            os.kill(victim, signal.SIGKILL)
    time.sleep(3)
    assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.STARTED  # nobody noticed yet
    with dagster_services(tmp_path, env, daemon=True):  # the daemon comes back
        deadline = time.monotonic() + 600
        while True:
            run = instance.get_run_by_id(killed.run_id)
            retries = [r for r in instance.get_runs() if r.tags.get("dagster/parent_run_id") == killed.run_id]
            if run.status == dg.DagsterRunStatus.FAILURE and retries and retries[0].is_finished:
                break
            assert time.monotonic() < deadline, (run.status, [r.status for r in retries],
                                                 (tmp_path / "daemon.log").read_text()[-3000:])
            time.sleep(1)
    messages = " ".join(e.dagster_event.message or "" for e in instance.all_logs(killed.run_id) if e.dagster_event)
    assert f"run worker process {pid} is gone" in messages
    assert retries[0].status == dg.DagsterRunStatus.SUCCESS
    home = Path(env["ALEVOR_HOME"])
    assert sorted(p.name for p in (home / "warehouse" / "raw_trades").iterdir()) == ["date=2024-01-01", "date=2024-01-02", "date=2024-01-03"]
    assert [p for p in (home / "staging").rglob("*.parquet") if ".retired" not in p.parts] == []
