"""A Celery deployment on this machine for the scale-out test and benchmark: a RabbitMQ vhost of
its own, the Dagster daemon and N ``python -m alevor_assets worker`` processes, each in a process
group of its own so that stopping them leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alevor_assets.devserver import group_members

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@contextmanager
def rabbitmq_vhost(prefix: str) -> Iterator[str]:
    """A fresh vhost on the machine's RabbitMQ (guest may use it), deleted afterwards; yields its broker URL."""
    vhost = f"{prefix}_{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True, timeout=60)
    try:
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                       check=True, capture_output=True, timeout=60)
        yield f"pyamqp://guest@127.0.0.1:5672/{vhost}"
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60)


def daemon_command(backfill_tick_seconds: int | None = None) -> list[str]:
    """``dagster-daemon run`` for workspace.yaml; with ``backfill_tick_seconds``, the same daemon
    with its backfill loop ticking that often instead of Dagster's 30 s (``bench/_daemon.py``)."""
    daemon = [str(BIN / "dagster-daemon")] if backfill_tick_seconds is None else [
        sys.executable, "-m", "bench._daemon", str(backfill_tick_seconds)]
    return daemon + ["run", "-w", "workspace.yaml"]


def stop_groups(pgids: list[int], timeout: float = 60) -> None:
    """SIGTERM every group (a Celery worker finishes its task, the daemon its tick), SIGKILL what is left."""
    for pgid in pgids:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(group_members(g) for g in pgids) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pgid in pgids:
        if group_members(pgid):
            os.killpg(pgid, signal.SIGKILL)


def _wait_for_daemons(env: dict[str, str], deadline: float) -> None:
    """Until the daemon's backfill and run-queue loops have beaten once (the daemon loads the code
    location first), so a timed backfill does not include the daemon's own start-up."""
    probe = "import dagster as dg\nwith dg.DagsterInstance.get() as i: print(' '.join(i.get_daemon_heartbeats()))"
    while True:
        beats = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, timeout=120).stdout
        if {"BACKFILL", "QUEUED_RUN_COORDINATOR"} <= set(beats.split()):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the daemon's backfill and run queue loops did not start: {beats!r}")
        time.sleep(2)


@contextmanager
def cluster(
    env: dict[str, str], logs: Path, workers: list[str], concurrency: int = 1, backfill_tick_seconds: int | None = None
) -> Iterator[list[subprocess.Popen]]:
    """``dagster instance migrate``, then the daemon (its backfill loop ticking every
    ``backfill_tick_seconds`` instead of Dagster's 30 when given: ``bench/_daemon.py``) and one
    worker per name, yielded once all are ready; all stopped on exit."""
    subprocess.run([str(BIN / "dagster"), "instance", "migrate"], cwd=REPO, env=env, check=True, capture_output=True, timeout=300)
    procs: list[subprocess.Popen] = []
    try:
        for name in workers:
            with (logs / f"worker-{name}.log").open("w") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "alevor_assets", "worker", "--name", name, "--concurrency", str(concurrency)],
                    cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        with (logs / "daemon.log").open("w") as log:
            procs.append(subprocess.Popen(daemon_command(backfill_tick_seconds), cwd=REPO, env=env,
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 300
        for name in workers:
            log = logs / f"worker-{name}.log"
            while f"{name}@" not in log.read_text() or " ready." not in log.read_text():
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"worker {name} did not start: {log.read_text()[-3000:]}")
                time.sleep(0.5)
        _wait_for_daemons(env, deadline)
        yield procs
    finally:
        stop_groups([p.pid for p in procs])
        for p in procs:
            p.wait(timeout=30)
