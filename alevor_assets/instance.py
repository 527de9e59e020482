"""The Dagster instance's storage, chosen by one environment variable.

``dagster.yaml`` names this class as its storage. Without ``ALEVOR_DAGSTER_PG_URL`` it is Dagster's
own SQLite storage under ``$DAGSTER_HOME/storage`` (no server); with it, Dagster's own
dagster-postgres storage for runs, the event log and schedules in that database. Every process of
the instance (webserver, daemon, run workers) makes the same choice from the same environment.
"""

from __future__ import annotations

import os
from typing import Any

from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClass, ConfigurableClassData

PG_URL_VARIABLE = "ALEVOR_DAGSTER_PG_URL"


def sqlalchemy_url(url: str) -> str:
    """A libpq URL for SQLAlchemy with the psycopg2 driver, which is what is installed (SQLAlchemy
    2.1 would otherwise pick psycopg 3 for a bare ``postgresql://``)."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme):]
    return url


class InstanceStorage(DagsterStorage, ConfigurableClass):
    """Factory only: ``from_config_value`` returns Dagster's SQLite or PostgreSQL storage."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> DagsterStorage:  # type: ignore[override]
        url = os.environ.get(PG_URL_VARIABLE)
        if url:
            from dagster_postgres import DagsterPostgresStorage

            return DagsterPostgresStorage(postgres_url=sqlalchemy_url(url), inst_data=inst_data)
        home = os.environ.get("DAGSTER_HOME")
        if not home:
            raise RuntimeError("DAGSTER_HOME must be set to use this dagster.yaml (make sets it for you)")
        return DagsterSqliteStorage.from_local(os.path.join(home, "storage"), inst_data=inst_data)
