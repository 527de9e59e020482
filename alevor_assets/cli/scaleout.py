"""``worker`` and ``backfill``: a Celery worker of this code location, and a backfill submitted to
the Dagster instance, whose daemon launches its runs (README "Scaling out")."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date, timedelta
from typing import Any

MARKET_DATA = "market_data"
QUEUE = "dagster"  # dagster-celery's queue: every step goes there unless an op is tagged otherwise


def add_commands(sub: Any) -> None:
    worker_cmd = sub.add_parser("worker", help="run a Celery worker for this code location (ALEVOR_EXECUTOR=celery)")
    worker_cmd.add_argument("--name", default=os.environ.get("WORKER_NAME"), help="worker name (default: WORKER_NAME, else alevor-<pid>)")
    worker_cmd.add_argument("--concurrency", type=int, default=1, help="steps this worker runs at once (processes)")
    worker_cmd.add_argument("--loglevel", default="INFO")
    worker_cmd.set_defaults(func=worker)
    back = sub.add_parser("backfill", help="submit a backfill to the Dagster instance (the daemon runs it) and wait")
    back.add_argument("--start", required=True, help="first day, e.g. 2024-01-01")
    back.add_argument("--end", required=True, help="last day, included")
    back.add_argument("--select", default="*", help="Dagster asset selection (default: every asset), e.g. 'raw_trades*'")
    back.set_defaults(func=backfill)


def worker(args: argparse.Namespace) -> int:
    """Replaces this process with ``celery worker`` (signals and process groups reach it directly)."""
    if not os.environ.get("ALEVOR_DAGSTER_PG_URL"):
        print("warning: ALEVOR_DAGSTER_PG_URL is not set: workers on other hosts cannot share this instance", file=sys.stderr)
    name = args.name or f"alevor-{os.getpid()}"
    cmd = [sys.executable, "-m", "celery", "-A", "alevor_assets.celery_app", "worker", "-n", f"{name}@%h",
           "-c", str(args.concurrency), "-Q", QUEUE, "--prefetch-multiplier=1", "-l", args.loglevel]
    os.execv(sys.executable, cmd)
    return 0  # not reached


def phases(selected: set[str], groups: dict[str, str]) -> list[list[str]]:
    """market_data first, the rest once it is complete: the features' warm-up and the labels'
    look-back read earlier days' bars as context (not a tracked dependency), so with runs of
    ``days_per_run`` days side by side every bar of the range must exist before any feature."""
    first = sorted(k for k in selected if groups[k] == MARKET_DATA)
    rest = sorted(k for k in selected if groups[k] != MARKET_DATA)
    return [p for p in (first, rest) if p]


def backfill(args: argparse.Namespace) -> int:
    import dagster as dg
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.utils import make_new_backfill_id

    from alevor_assets.definitions import defs

    first, last = date.fromisoformat(args.start), date.fromisoformat(args.end)
    days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    graph = defs().resolve_asset_graph()
    selected = {k.to_user_string() for k in dg.AssetSelection.from_string(args.select).resolve(graph)}
    groups = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}
    instance = dg.DagsterInstance.get()
    for number, keys in enumerate(phases(selected, groups), 1):
        backfill_id = make_new_backfill_id()
        instance.add_backfill(PartitionBackfill.from_asset_partitions(
            backfill_id=backfill_id, asset_graph=graph, partition_names=days,
            asset_selection=[dg.AssetKey.from_user_string(k) for k in keys], backfill_timestamp=time.time(),
            tags={}, dynamic_partitions_store=instance, all_partitions=False,
            title=f"{first}..{last} phase {number}", description=", ".join(keys), run_config=None,
        ))
        print(f"backfill {backfill_id} ({first}..{last}): {', '.join(keys)}; the daemon launches its runs", flush=True)
        status = _wait(instance, backfill_id)
        print(f"backfill {backfill_id}: {status.value}", flush=True)
        if status != BulkActionStatus.COMPLETED_SUCCESS:
            return 1
    return 0


def _wait(instance: Any, backfill_id: str) -> Any:
    from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES

    while True:
        status = instance.get_backfill(backfill_id).status
        if status in BULK_ACTION_TERMINAL_STATUSES:
            return status
        time.sleep(2)
