"""Delivering live alerts: a command (the alert as JSON on its stdin) and/or a webhook (the alert
as a JSON POST), once per alert, in a thread of its own so a slow or failing receiver never holds
up scoring.

An alert is delivered when every configured hook succeeded (command exit status 0, HTTP 2xx);
its identity is then appended to ``delivered.log``. A failure is logged and retried with growing
pauses (1 s doubling to 60 s); alerts written but not delivered when the process stopped are
delivered after a restart. A process killed between a hook's success and the log line delivers
that one alert again (at least once, never zero times): each payload carries the alert's ``id``
(spec|token|bar start in µs) for a receiver to drop a repeat.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import polars as pl

from alevor_assets.lib.live.store import LiveStore, alert_ids

Log = Callable[[str], None]


def alert_payload(alert_id: str, row: dict[str, Any]) -> bytes:
    """The JSON document a hook receives for one alert (times as ISO-8601 UTC)."""
    out = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
    out["id"] = alert_id
    return json.dumps(out, sort_keys=True).encode()


def run_command(command: str, payload: bytes, timeout: float = 30.0) -> None:
    done = subprocess.run(command, shell=True, input=payload, capture_output=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"exit status {done.returncode}: {done.stderr.decode(errors='replace')[-300:].strip()}")


def post_webhook(url: str, payload: bytes, timeout: float = 10.0) -> None:
    request = urllib.request.Request(url, data=payload, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the operator's own URL
        if not 200 <= response.status < 300:
            raise RuntimeError(f"HTTP {response.status}")


class Delivery:
    """A background thread delivering queued alerts through the configured hooks."""

    def __init__(self, store: LiveStore, command: str | None, webhook: str | None, log: Log = print,
                 max_pause: float = 60.0):
        self.store, self.command, self.webhook, self.log, self.max_pause = store, command, webhook, log, max_pause
        self.queue: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.command or self.webhook)

    def start(self) -> None:
        """Queue every written alert not delivered yet, and start delivering."""
        if not self.enabled:
            return
        done = self.store.delivered()
        self.submit(self.store.alerts(), skip=done)
        self.thread = threading.Thread(target=self._run, name="alert-delivery", daemon=True)
        self.thread.start()

    def submit(self, alerts: pl.DataFrame, skip: set[str] | None = None) -> None:
        if not self.enabled:
            return
        for alert_id, row in zip(alert_ids(alerts), alerts.iter_rows(named=True)):
            if not skip or alert_id not in skip:
                self.queue.put((alert_id, alert_payload(alert_id, row)))

    def _deliver(self, payload: bytes) -> None:
        if self.command:
            run_command(self.command, payload)
        if self.webhook:
            post_webhook(self.webhook, payload)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                alert_id, payload = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            pause = 1.0
            while not self._stop.is_set():
                try:
                    self._deliver(payload)
                except Exception as exc:  # noqa: BLE001 - any failure of the receiver is retried
                    self.log(f"delivery of alert {alert_id} failed ({exc}); retrying in {pause:.0f} s")
                    self._stop.wait(pause)
                    pause = min(pause * 2, self.max_pause)
                    continue
                self.store.mark_delivered(alert_id)
                break
            self.queue.task_done()

    def drain(self, timeout: float) -> bool:
        """Wait until the queue is empty (True) or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queue.unfinished_tasks == 0:
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        self._stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
