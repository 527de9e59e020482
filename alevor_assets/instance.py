"""The Dagster instance's storage, chosen by one environment variable, and its run launcher.

``dagster.yaml`` names this class as its storage. Without ``ALEVOR_DAGSTER_PG_URL`` it is Dagster's
own SQLite storage under ``$DAGSTER_HOME/storage`` (no server); with it, Dagster's own
dagster-postgres storage for runs, the event log and schedules in that database. Every process of
the instance (webserver, daemon, run workers) makes the same choice from the same environment.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from dagster import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClass, ConfigurableClassData

PG_URL_VARIABLE = "ALEVOR_DAGSTER_PG_URL"


def sqlalchemy_url(url: str) -> str:
    """A libpq URL for SQLAlchemy with the psycopg2 driver, which is what is installed (SQLAlchemy
    2.1 would otherwise pick psycopg 3 for a bare ``postgresql://``)."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme):]
    return url


class InstanceStorage(DagsterStorage, ConfigurableClass):
    """Factory only: ``from_config_value`` returns Dagster's SQLite or PostgreSQL storage."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> DagsterStorage:  # type: ignore[override]
        url = os.environ.get(PG_URL_VARIABLE)
        if url:
            from dagster_postgres import DagsterPostgresStorage

            return DagsterPostgresStorage(postgres_url=sqlalchemy_url(url), inst_data=inst_data)
        home = os.environ.get("DAGSTER_HOME")
        if not home:
            raise RuntimeError("DAGSTER_HOME must be set to use this dagster.yaml (make sets it for you)")
        return DagsterSqliteStorage.from_local(os.path.join(home, "storage"), inst_data=inst_data)


class MonitoredRunLauncher(DefaultRunLauncher):
    """Dagster's default run launcher (a process per run, started by the code server), plus the
    health check run monitoring needs to see a run whose worker died.

    Dagster's own launcher offers no health check, so a run whose process tree was killed (the
    code server with its run workers, an out-of-memory kill, a crashed ``dagster dev``) stays
    ``STARTED`` for ever. Here the daemon looks up the run worker's pid in the run's own events
    ("Started process for run (pid: N)") and, when the code server that started it runs on this
    host and that process is gone, reports the worker as not found: monitoring marks the run
    failed and ``run_retries`` launches it again. A worker on another host, or one it cannot
    identify, is reported as running (never failed on a guess).
    """

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        worker = _run_worker(self._instance, run.run_id)
        if worker is None or not _launched_on_this_host(run):
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker not identified on this host")
        pid, since = worker
        if _process_alive(pid, since):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        _mark_will_retry(self._instance, run)
        return CheckRunHealthResult(WorkerStatus.NOT_FOUND, f"run worker process {pid} is gone")


def _mark_will_retry(instance: Any, run: DagsterRun) -> None:
    """Tag a run whose worker is gone ``dagster/will_retry=true`` *before* monitoring marks it
    failed, when ``run_retries`` will retry it.

    Why: Dagster tags a failed run only just after storing its failure. A backfill daemon tick that
    falls in between sees a failed run of the backfill that will not be retried, ends the backfill
    COMPLETED_FAILED, and a run of a finished backfill is never retried: the killed run's days
    stayed unbuilt (seen in tests/test_run_monitoring.py, where the restarted daemon's monitoring
    and backfill loops start together). Tagged first, the backfill waits for the retry.
    """
    from dagster._core.execution.retries import auto_reexecution_should_retry_run
    from dagster._core.storage.dagster_run import DagsterRunStatus
    from dagster._core.storage.tags import WILL_RETRY_TAG

    if instance.run_retries_enabled and auto_reexecution_should_retry_run(
        instance, run.with_status(DagsterRunStatus.FAILURE), None
    ):
        instance.add_run_tags(run.run_id, {WILL_RETRY_TAG: "true"})


def _run_worker(instance: Any, run_id: str) -> tuple[int, float] | None:
    """(pid, event time) of the process that started executing the run."""
    from dagster._core.events import DagsterEventType

    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        data = getattr(event, "event_specific_data", None) if event else None
        pid = (getattr(data, "metadata", None) or {}).get("pid")
        if pid is not None and (event.message or "").startswith("Started process for run"):
            return int(pid.value), float(record.timestamp)
    return None


def _launched_on_this_host(run: DagsterRun) -> bool:
    info = run.tags.get(GRPC_INFO_TAG)
    if not info:
        return False
    grpc = json.loads(info)
    return bool(grpc.get("socket")) or grpc.get("host") in ("localhost", "127.0.0.1", "::1", socket.gethostname())


def _process_alive(pid: int, since: float) -> bool:
    """Whether ``pid`` is a live process that existed at ``since`` (a reused pid is not it)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no /proc to read: assume alive rather than fail a run on a guess
    if fields[0] == "Z":
        return False
    with open("/proc/stat") as fh:
        boot = next(float(line.split()[1]) for line in fh if line.startswith("btime"))
    started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return started <= since + 1.0
