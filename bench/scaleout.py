"""Scale-out benchmark: ``python -m bench.scaleout`` (``make bench-scaleout``).

An 8-day backfill of raw_trades, tokens, bars and features on the shipped synthetic market, three ways:
one in-process run (``dagster asset materialize --partition-range``), and
``python -m alevor_assets backfill`` with ``backfill.days_per_run: 4`` on 1 and on 2 Celery workers
(concurrency 1 each; the daemon launches the runs; RabbitMQ vhost and PostgreSQL instance of its
own). Wall time of each, and where the Celery runs' time goes, from the event log: run start-up
(launched to started), queue wait (task submitted to a worker picking it up), step set-up in the
worker (picked to STEP_START), the step's own work (STEP_START to STEP_SUCCESS), and the time no
run was in progress (the backfill daemon ticks every 30 s and waits for a tick between phases).
``--pipeline FILE`` overlays another pipeline.yaml (e.g. a smaller market). ``--threads N`` caps the
Polars, Numba and OpenMP threads of every process (the in-process run and each worker) at N: on one
2-core host, ``--threads 1`` gives each worker one core, as one worker per host would have its
host's cores, so 1 vs 2 workers measures scale-out rather than two workers sharing the same cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from bench._cluster import BIN, REPO, cluster, rabbitmq_vhost
from bench._measure import table

FIRST, LAST = "2024-01-01", "2024-01-08"
SELECTION = ["raw_trades", "tokens", "bars", "features"]
DAYS_PER_RUN = 4
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


THREAD_VARIABLES = ("POLARS_MAX_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS")
THREADS: int | None = None


def environment(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALEVOR_", "DAGSTER_"))}
    if THREADS:
        env.update({name: str(THREADS) for name in THREAD_VARIABLES})
    (tmp / "dagster").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", tmp / "dagster" / "dagster.yaml")
    env.update(ALEVOR_HOME=str(tmp / "alevor"), DAGSTER_HOME=str(tmp / "dagster"), **extra)
    return env


def in_process(tmp: Path, overlay: Path) -> dict:
    env = environment(tmp, ALEVOR_PIPELINE=str(overlay))
    started = time.monotonic()
    subprocess.run([str(BIN / "dagster"), "asset", "materialize", "-m", "alevor_assets.definitions", "--select",
                    ",".join(SELECTION), "--partition-range", f"{FIRST}...{LAST}"], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=7200)
    return {"mode": "in-process, 1 run", "wall s": time.monotonic() - started}


def database() -> str:
    import psycopg2

    name = f"alevor_celery_bench_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return name


def drop(name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def on_workers(tmp: Path, overlay: Path, workers: int) -> dict:
    tmp.mkdir(parents=True)
    split = tmp / "pipeline.yaml"
    split.write_text(yaml.safe_dump((yaml.safe_load(overlay.read_text()) or {}) | {"backfill": {"days_per_run": DAYS_PER_RUN}}))
    db = database()
    try:
        with rabbitmq_vhost("alevor_celery_bench") as broker:
            env = environment(tmp, ALEVOR_PIPELINE=str(split), ALEVOR_EXECUTOR="celery", ALEVOR_CELERY_BROKER=broker,
                              ALEVOR_DAGSTER_PG_URL=f"postgresql://postgres@127.0.0.1:5432/{db}")
            with cluster(env, tmp, [f"bench{i + 1}" for i in range(workers)]):
                started = time.monotonic()
                subprocess.run([sys.executable, "-m", "alevor_assets", "backfill", "--start", FIRST, "--end", LAST,
                                "--select", " or ".join(f"key:{k}" for k in SELECTION)],
                               cwd=REPO, env=env, check=True, capture_output=True, timeout=7200)
                wall = time.monotonic() - started
            out = subprocess.run([sys.executable, "-m", "bench._steps"], cwd=REPO, env=env, check=True, capture_output=True,
                                 text=True, timeout=300).stdout
    finally:
        drop(db)
    return breakdown([json.loads(line) for line in out.splitlines()], wall, workers)


def breakdown(runs: list[dict], wall: float, workers: int) -> dict:
    steps = [s for r in runs for s in r["steps"]]
    assert all(r["status"] == "SUCCESS" for r in runs), [r["status"] for r in runs]
    n = len(steps)
    spans = sorted((r["launched"], r["run_end"]) for r in runs)
    busy, end = 0.0, 0.0
    for s, e in spans:  # time covered by at least one run, launch to end
        busy += max(0.0, e - max(s, end))
        end = max(end, e)
    return {
        "mode": f"celery, {workers} worker{'s' * (workers > 1)}", "wall s": wall, "runs": len(runs), "steps": n,
        "run start-up s/run": sum(r["run_start"] - r["launched"] for r in runs) / len(runs),
        "queue wait s/step": sum(s["picked"] - s["submitted"] for s in steps) / n,
        "step set-up s/step": sum(s["started"] - s["picked"] for s in steps) / n,
        "step work s/step": sum(s["ended"] - s["started"] for s in steps) / n,
        "no run in progress s": wall - busy,
        "runs in progress s": busy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout")
    parser.add_argument("--pipeline", type=Path, default=None, help="ALEVOR_PIPELINE overlay (default: the shipped market)")
    parser.add_argument("--threads", type=int, default=None, help="cap Polars/Numba/OpenMP threads per process")
    args = parser.parse_args()
    global THREADS
    THREADS = args.threads
    print(f"threads per process: {THREADS or 'all cores'}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="alevor-scaleout-") as tmp:
        overlay = Path(tmp) / "overlay.yaml"
        overlay.write_text(args.pipeline.read_text() if args.pipeline else "{}\n")
        print(f"load average before: {os.getloadavg()}", flush=True)
        rows.append(in_process(Path(tmp) / "in_process", overlay))
        print(rows[-1], flush=True)
        for workers in (1, 2):
            rows.append(on_workers(Path(tmp) / f"workers{workers}", overlay, workers))
            print(rows[-1], flush=True)
        print(f"load average after: {os.getloadavg()}", flush=True)
    rows.append({"mode": "2 workers / 1 worker", "wall s": rows[2]["wall s"] / rows[1]["wall s"],
                 "runs in progress s": rows[2]["runs in progress s"] / rows[1]["runs in progress s"]})
    print()
    print(table(rows, ["mode", "wall s", "runs", "steps", "run start-up s/run", "queue wait s/step", "step set-up s/step",
                       "step work s/step", "no run in progress s", "runs in progress s"]))


if __name__ == "__main__":
    main()
