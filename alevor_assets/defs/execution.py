"""Which executor runs the steps of every job: in process (the default) or Celery workers.

In process, all steps of a run share one process: measured here, that costs about 0.04 s per asset
against about 2 s per step for a fresh process, and each step is a DuckDB or Polars batch job that
already uses every core. Past one machine, ``ALEVOR_EXECUTOR=celery`` hands each step to
dagster-celery's executor: the run's process submits steps to RabbitMQ and any ``make worker``
that sees the same ``ALEVOR_HOME`` and Dagster instance runs them (README "Scaling out"). The
choice is read when the code location loads, like the partitions: every process of the
deployment (webserver, daemon, run workers, Celery workers) must make the same one.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

DEFAULT_BROKER = "pyamqp://guest@127.0.0.1:5672//"
DEFAULT_BACKEND = "rpc://"
EXECUTORS = ("in_process", "celery")


def executor_name() -> str:
    name = dg.EnvVar("ALEVOR_EXECUTOR").get_value("in_process") or "in_process"
    if name not in EXECUTORS:
        raise ValueError(f"ALEVOR_EXECUTOR must be one of {', '.join(EXECUTORS)}, got {name!r}")
    return name


def celery_config() -> dict[str, Any]:
    """dagster-celery's executor config. A URL set in the environment is passed by the variable's
    name ({"env": ...}), never by value, so a broker password stays out of the run storage."""
    return {
        "broker": {"env": "ALEVOR_CELERY_BROKER"} if os.environ.get("ALEVOR_CELERY_BROKER") else DEFAULT_BROKER,
        "backend": {"env": "ALEVOR_CELERY_BACKEND"} if os.environ.get("ALEVOR_CELERY_BACKEND") else DEFAULT_BACKEND,
    }


def run_executor() -> dg.ExecutorDefinition:
    if executor_name() == "in_process":
        return dg.in_process_executor
    from dagster_celery import celery_executor

    return celery_executor.configured(celery_config(), name="celery")
