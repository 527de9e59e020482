"""Scale-out on Celery (README "Scaling out"): two workers in separate processes with their own
names, a RabbitMQ vhost and a PostgreSQL instance of their own, the daemon launching a backfill cut
into runs of two days (``python -m alevor_assets backfill``). Every step succeeds, steps run on both
workers, and every partition file equals, byte for byte, the one an in-process single run writes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from bench._cluster import BIN, cluster, group_members, rabbitmq_vhost
from tests.conftest import REPO, SMALL_PIPELINE, cli_env

pytestmark = pytest.mark.slow

PARTITIONED = ["raw_trades", "tokens", "labelled_events", "bars", "features", "labels_pump_detector_2s",
               "training_set_pump_detector_2s"]
SELECTION = PARTITIONED + ["model_pump_detector_2s"]
FIRST, LAST = "2024-01-01", "2024-01-04"
DAYS = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]


def warehouse_files(home: Path) -> dict[str, str]:
    """sha256 of every published Parquet file of the selected assets, by path under the warehouse."""
    root = home / "warehouse"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for asset in PARTITIONED for p in sorted((root / asset).rglob("*.parquet"))}


def test_a_backfill_on_two_celery_workers_equals_the_in_process_build(tmp_path: Path, pg_database: str):
    reference = cli_env(tmp_path / "reference", ALEVOR_PIPELINE=str(SMALL_PIPELINE))
    built = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "alevor_assets.definitions", "--select", ",".join(SELECTION),
         "--partition-range", f"{FIRST}...{LAST}"],
        cwd=REPO, env=reference, capture_output=True, text=True, timeout=1200)
    assert built.returncode == 0, built.stderr[-3000:]

    overlay = yaml.safe_load(SMALL_PIPELINE.read_text()) | {"backfill": {"days_per_run": 2}}
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump(overlay))
    logs = tmp_path / "logs"
    logs.mkdir()
    with rabbitmq_vhost("alevor_celery_test") as broker:
        env = cli_env(tmp_path / "celery", ALEVOR_PIPELINE=str(tmp_path / "pipeline.yaml"), ALEVOR_EXECUTOR="celery",
                      ALEVOR_CELERY_BROKER=broker, ALEVOR_DAGSTER_PG_URL=pg_database)
        with cluster(env, logs, ["alevor_w1", "alevor_w2"], backfill_tick_seconds=2) as procs:
            backfill = subprocess.run(
                [sys.executable, "-m", "alevor_assets", "backfill", "--start", FIRST, "--end", LAST,
                 "--select", " or ".join(f"key:{k}" for k in SELECTION)],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
            steps_out = subprocess.run([sys.executable, "-m", "bench._steps"], cwd=REPO, env=env, capture_output=True,
                                       text=True, timeout=300)
        assert not any(group_members(p.pid) for p in procs), "a worker or the daemon outlived the test"
    assert backfill.returncode == 0, (backfill.stdout, backfill.stderr[-3000:], (logs / "daemon.log").read_text()[-3000:])
    assert backfill.stdout.count("COMPLETED_SUCCESS") == 2, backfill.stdout  # market_data, then the rest

    runs = [json.loads(line) for line in steps_out.stdout.splitlines()]
    steps = [s for run in runs for s in run["steps"]]
    assert all(run["status"] == "SUCCESS" for run in runs), runs
    assert steps and all(s["status"] == "STEP_SUCCESS" for s in steps), steps
    # Runs of at most two days (days_per_run; where the cuts fall depends on which days' upstream
    # the daemon found done at each tick), each step executed by a worker.
    assert {s["step"] for s in steps} >= set(SELECTION)
    assert all(r["range"][0] is None or date.fromisoformat(r["range"][1]) - date.fromisoformat(r["range"][0]) <= timedelta(days=1)
               for r in runs), [r["range"] for r in runs]
    workers = {s["worker"].split("@")[0] for s in steps}
    assert workers == {"alevor_w1", "alevor_w2"}, workers

    celery_files, reference_files = warehouse_files(tmp_path / "celery" / "alevor"), warehouse_files(tmp_path / "reference" / "alevor")
    for asset in PARTITIONED:  # every day of every asset is there, so the comparison covers them
        assert {p.split("date=")[1][:10] for p in reference_files if p.startswith(f"{asset}/")} == set(DAYS), asset
    assert celery_files == reference_files
