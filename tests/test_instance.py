"""The run launcher's health check: a run whose worker process is gone is reported as such, and
marked for retry before monitoring fails it (so a backfill tick in between waits for the retry)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.launcher.base import WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._core.storage.tags import GRPC_INFO_TAG, WILL_RETRY_TAG


def _instance(tmp_path, retries: bool) -> dg.DagsterInstance:
    return dg.DagsterInstance.local_temp(str(tmp_path), overrides={
        "run_launcher": {"module": "alevor_assets.instance", "class": "MonitoredRunLauncher"},
        "run_retries": {"enabled": retries, "max_retries": 2},
    })


def _started_run(instance: dg.DagsterInstance, pid: int) -> DagsterRun:
    run = DagsterRun(job_name="__ASSET_JOB", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED,
                     tags={GRPC_INFO_TAG: json.dumps({"socket": "/tmp/code-server.sock"})})
    instance.add_run(run)
    instance.report_engine_event(f"Started process for run (pid: {pid}).", run,
                                 EngineEventData(metadata={"pid": dg.MetadataValue.int(pid)}))
    return run


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("retries", [True, False])
def test_a_gone_worker_is_reported_and_its_run_marked_for_retry_first(tmp_path, retries):
    with _instance(tmp_path, retries) as instance:
        run = _started_run(instance, _dead_pid())
        health = instance.run_launcher.check_run_worker_health(run)
        assert health.status == WorkerStatus.NOT_FOUND and "is gone" in health.msg
        tags = instance.get_run_by_id(run.run_id).tags
        # Still STARTED: the tag is there before monitoring reports the failure.
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
        assert tags.get(WILL_RETRY_TAG) == ("true" if retries else None)


def test_a_live_worker_is_running_and_untagged(tmp_path):
    with _instance(tmp_path, True) as instance:
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            run = _started_run(instance, worker.pid)
            assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
            assert WILL_RETRY_TAG not in instance.get_run_by_id(run.run_id).tags
        finally:
            worker.kill()
            worker.wait()
