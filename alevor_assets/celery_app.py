"""The Celery app a worker of this code location runs (``python -m alevor_assets worker``):
dagster-celery's step task on the broker and result backend of ``ALEVOR_CELERY_BROKER`` and
``ALEVOR_CELERY_BACKEND``, the same app the executor submits to (defs/execution.py).

dagster-celery's own ``worker start`` writes the broker URL, password included, into a Python file
under ``$DAGSTER_HOME`` at every start; this module reads it from the environment instead.
"""

from __future__ import annotations

import os

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from alevor_assets.defs.execution import DEFAULT_BACKEND, DEFAULT_BROKER

app = make_app(
    CeleryExecutor.for_cli(
        broker=os.environ.get("ALEVOR_CELERY_BROKER") or DEFAULT_BROKER,
        backend=os.environ.get("ALEVOR_CELERY_BACKEND") or DEFAULT_BACKEND,
    ).app_args()
)
execute_plan = create_task(app)
