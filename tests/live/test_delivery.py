"""The delivery hooks: a command and a webhook, once per alert, retried after a failure without
holding up the caller."""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import polars as pl

from alevor_assets.lib.live.delivery import Delivery
from alevor_assets.lib.live.store import LIVE_ALERT_SCHEMA, LiveStore, alert_ids


def _alerts(n: int) -> pl.DataFrame:
    t = datetime(2024, 1, 3, 10, tzinfo=timezone.utc)
    rows = [{"token": f"T{i}", "interval": "2s", "ts": t, "alerted_at": t, "spec": "pump_detector_2s", "score": 0.9,
             "threshold": 0.5, "version": 1, "source": "model", "reason": None, "top_features": "x=1",
             "mode": "live", "written_at": t} for i in range(n)]
    return pl.DataFrame(rows, schema=LIVE_ALERT_SCHEMA)


def test_the_command_runs_once_per_alert_and_a_failure_is_retried(tmp_path):
    store = LiveStore(tmp_path)
    alerts = _alerts(3)
    store.write_alerts(alerts.head(2))
    out, flag = tmp_path / "calls.jsonl", tmp_path / "failed-once"
    # Fails on its first call (exit 1), then appends the JSON it reads.
    script = ("import sys, os; f = sys.argv[2]\n"
              "if not os.path.exists(f): open(f, 'w').close(); sys.exit(1)\n"
              "open(sys.argv[1], 'a').write(sys.stdin.read() + chr(10))")
    (tmp_path / "hook.py").write_text(script)
    logs: list[str] = []
    delivery = Delivery(store, f"{sys.executable} {tmp_path / 'hook.py'} {out} {flag}", None, log=logs.append, max_pause=0.2)
    delivery.start()  # the two alerts already written
    store.write_alerts(alerts.tail(1))
    delivery.submit(alerts.tail(1))
    assert delivery.drain(30)
    delivery.stop()
    calls = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(c["id"] for c in calls) == sorted(alert_ids(alerts)) == sorted(store.delivered())
    assert calls[0]["token"] == "T0" and calls[0]["ts"] == "2024-01-03T10:00:00+00:00" and calls[0]["score"] == 0.9
    assert len(logs) == 1 and "failed (exit status 1" in logs[0]
    # A restart delivers nothing again.
    again = Delivery(store, f"{sys.executable} {tmp_path / 'hook.py'} {out} {flag}", None)
    again.start()
    assert again.queue.qsize() == 0
    again.stop()


def test_the_webhook_gets_one_post_per_alert(tmp_path):
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(500 if len(received) == 1 else 204)  # the first attempt fails
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        store = LiveStore(tmp_path)
        alerts = _alerts(2)
        store.write_alerts(alerts)
        delivery = Delivery(store, None, f"http://127.0.0.1:{server.server_port}/alerts", log=lambda m: None, max_pause=0.2)
        delivery.start()
        assert delivery.drain(30)
        delivery.stop()
    finally:
        server.shutdown()
    assert [r["id"] for r in received] == [alert_ids(alerts)[0], *alert_ids(alerts)]
    assert store.delivered() == set(alert_ids(alerts))
