"""Acceptances 3 and the delivery hook: the live service, killed with SIGKILL mid-stream and
restarted, loses no trade and repeats no alert, and its hook runs once per alert."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from alevor_assets.defs.resources import AlevorStorage
from alevor_assets.lib.alerts import ALERT_SCHEMA
from alevor_assets.lib.intervals import day_start_us
from alevor_assets.lib.live.store import LiveStore, alert_ids
from tests.conftest import REPO
from tests.helpers import PUMP_SPEC
from tests.live.conftest import D3, commit_trades, insert_tokens, with_row_ids

pytestmark = pytest.mark.slow

# The intervals of tests/conftest.small_settings, which built the warehouse.
OVERLAY = """bars: {intervals: [2s, 1m, 5m], dollar_thresholds: [20000]}
features: {intervals: [2s, 1m], multi_timeframe: [1m, 5m]}
live: {tick: 1s, late_commit: 5s}
"""
HOOK = "import sys; open(sys.argv[1], 'a').write(sys.stdin.read().replace(chr(10), ' ') + chr(10))"


def _start(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "alevor_assets", "live", "--day", D3.isoformat(), "--trade-clock"],
                            cwd=REPO, env=env, stdout=open(log, "a"), stderr=subprocess.STDOUT, start_new_session=True)


def _scored_until(home: Path) -> int:
    path = home / "live" / "state.json"
    return json.loads(path.read_text())["scored_until"]["2s"] if path.exists() else 0


def _wait_scored(home: Path, at_least_us: int, proc: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while _scored_until(home) < at_least_us:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)


def test_a_killed_live_service_loses_no_trade_and_repeats_no_alert(home, live_db, tmp_path):
    wh = AlevorStorage(home=str(home)).warehouse
    trades = with_row_ids(wh.read_partition("raw_trades", D3))
    insert_tokens(live_db, wh.read_partition("tokens", D3))
    overlay, hooked, log = tmp_path / "pipeline.yaml", tmp_path / "hooked.jsonl", tmp_path / "live.log"
    overlay.write_text(OVERLAY)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALEVOR_", "DAGSTER_"))}
    env.update(ALEVOR_HOME=str(home), ALEVOR_SOURCE="postgres", ALEVOR_PG_URL=live_db, ALEVOR_PIPELINE=str(overlay),
               ALEVOR_START_DATE="2024-01-01", ALEVOR_ALERT_COMMAND=f"{sys.executable} -c \"{HOOK}\" {hooked}")
    n = trades.height
    chunks = [trades.slice(i * n // 10, (i + 1) * n // 10 - i * n // 10) for i in range(10)]
    ts_end = [int(c["ts"].dt.epoch("us").max()) for c in chunks]

    proc = _start(env, log)
    for i in range(4):
        commit_trades(live_db, chunks[i])
    _wait_scored(home, ts_end[3] - 8_000_000, proc, log)
    commit_trades(live_db, chunks[4])
    time.sleep(0.3)  # mid-tick, most likely: reading or scoring the fifth commit
    os.killpg(proc.pid, signal.SIGKILL)  # the service and a hook it may be running
    proc.wait()
    before = LiveStore(home).alerts()
    for i in range(5, 8):  # committed while the service is down
        commit_trades(live_db, chunks[i])
    proc = _start(env, log)
    try:
        for i in range(8, 10):
            commit_trades(live_db, chunks[i])
        nxt = trades.tail(1).with_columns(pl.col("ts") + pl.duration(days=1), pl.lit(n + 1, pl.Int64).alias("trade_id"))
        commit_trades(live_db, nxt)
        _wait_scored(home, day_start_us(D3) + 86_400_000_000, proc, log)
        deadline = time.monotonic() + 60
        while len(LiveStore(home).delivered()) < LiveStore(home).alerts().height and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

    store = LiveStore(home)
    live = store.alerts().filter(pl.col("spec") == PUMP_SPEC.name)
    batch = wh.read_partition("alerts", D3).filter(pl.col("spec") == PUMP_SPEC.name).select(list(ALERT_SCHEMA))
    assert batch.height > 0 and before.height < live.height
    # No repeat: every (spec, token, bar) once; no loss: the very alerts of the whole day's batch.
    assert live.unique(["spec", "token", "ts"]).height == live.height
    assert live.filter(pl.col("ts").dt.date() == D3).select(list(ALERT_SCHEMA)).sort("ts", "token").equals(batch.sort("ts", "token"))
    assert json.loads((home / "live" / "state.json").read_text())["too_late_trades"] == 0
    # The hook ran for every alert, with the alert as JSON; only an alert whose delivery was in
    # flight when the process was killed may have run twice (at least once; the id lets a
    # receiver drop the repeat).
    calls = [json.loads(line)["id"] for line in hooked.read_text().splitlines()]
    assert set(calls) == store.delivered() == set(alert_ids(store.alerts()))
    assert len(calls) - len(set(calls)) <= 1
    assert "ALERT" in log.read_text()
