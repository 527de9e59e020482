"""The Dagster instance itself on PostgreSQL (dagster-postgres), switched on by one variable."""

import json
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from tests.conftest import REPO, SMALL_PIPELINE, cli_env


@pytest.mark.slow
def test_whole_graph_run_with_the_instance_on_postgres(tmp_path, pg_database):
    # The smaller market: what is tested is where Dagster keeps its records (the shipped market's
    # whole graph runs in tests/test_cli.py).
    env = cli_env(tmp_path, ALEVOR_DAGSTER_PG_URL=pg_database, ALEVOR_PIPELINE=str(SMALL_PIPELINE))
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "alevor_assets.definitions",
         "--select", "*", "--partition-range", "2024-01-01...2024-01-02"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # No SQLite run or event database was created (compute logs stay files under DAGSTER_HOME)...
    assert not list(Path(env["DAGSTER_HOME"]).rglob("*.db"))
    # ...and the run, its events and the materializations are in PostgreSQL.
    conn = psycopg2.connect(pg_database)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT run_id, status FROM runs")
        runs = cur.fetchall()
        assert len(runs) == 1 and runs[0][1] == "SUCCESS"
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", [runs[0][0]])
        assert cur.fetchone()[0] > 50
        cur.execute(
            "SELECT asset_key, count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' GROUP BY 1"
        )
        materialized = {json.loads(k)[0]: n for k, n in cur.fetchall()}  # keys are stored as ["name"]
    conn.close()
    for asset in ("tokens", "labelled_events", "raw_trades", "bars", "token_daily_stats", "features", "labels_pump_detector_2s", "training_set_pump_detector_2s"):
        assert materialized.get(asset) == 2, (asset, materialized)  # one per day
    assert materialized["model_pump_detector_2s"] == 1 and materialized["validation_pump_detector_2s"] == 1
