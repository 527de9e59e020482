"""The DuckDB catalog at ``$ALEVOR_HOME/alevor.duckdb``: a convenience derived from the files.

It holds one view per warehouse asset over its Parquet files, the ``model_registry`` table (a copy
of the registry's files under ``$ALEVOR_HOME/models``) and the ``models`` view. Nothing reads it to
decide anything: the Parquet files and the registry files are the truth.

:meth:`Catalog.refresh` builds the whole catalog in a fresh file and moves it over
``alevor.duckdb`` with ``os.replace``. A reader that holds the old file open (a DuckDB shell, a
notebook) keeps reading it for as long as it likes and never blocks a refresh: DuckDB's lock is
on the old file, which the refresh no longer touches. Refreshes are serialized by a file lock so
the last one to finish is built from the newest state. Callers use :meth:`try_refresh`, which
reports a failure instead of raising it: a catalog that could not be refreshed is stale until the
next refresh, and never fails a run or undoes a publish. Writes to ``alevor.duckdb`` are lost at
the next refresh; keep your own tables in another file.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from alevor_assets.lib.fslock import hold

REGISTRY_DDL = """
CREATE TABLE model_registry (
    name VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    status VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    trainer VARCHAR NOT NULL,
    task VARCHAR NOT NULL,
    interval VARCHAR NOT NULL,
    artifact_path VARCHAR NOT NULL,
    artifact_sha256 VARCHAR NOT NULL,
    code_version VARCHAR NOT NULL,
    primary_metric VARCHAR,
    primary_value DOUBLE,
    gate_passed BOOLEAN,
    metrics JSON,
    top_features JSON,
    training JSON,
    report_path VARCHAR,
    promoted_at TIMESTAMPTZ,
    PRIMARY KEY (name, version)
)
"""
REGISTRY_COLUMNS = (
    "name", "version", "status", "created_at", "trainer", "task", "interval", "artifact_path",
    "artifact_sha256", "code_version", "primary_metric", "primary_value", "gate_passed", "metrics",
    "top_features", "training", "report_path", "promoted_at",
)
_JSON_COLUMNS = ("metrics", "top_features", "training")

MODELS_VIEW = """
CREATE VIEW models AS
SELECT name, version, status, created_at, trainer, interval, primary_metric, primary_value,
       gate_passed, promoted_at, metrics, top_features, report_path
FROM model_registry ORDER BY name, version
"""

PREDICTIONS_VIEW = "predictions"
PREDICTIONS_PREFIX = "predictions_"


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Catalog:
    def __init__(
        self,
        db_path: str | os.PathLike[str],
        warehouse_root: str | os.PathLike[str] | None = None,
        models_root: str | os.PathLike[str] | None = None,
    ):
        self.db_path = Path(db_path)
        self.warehouse_root = Path(warehouse_root) if warehouse_root else self.db_path.parent / "warehouse"
        self.models_root = Path(models_root) if models_root else self.db_path.parent / "models"

    @contextmanager
    def connect(self, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection to the current catalog (refreshed first if there is none).
        ``read_only`` exists for older callers: the catalog is always opened read-only."""
        if not self.db_path.exists():
            self.refresh()
        con = duckdb.connect(str(self.db_path), read_only=True)
        try:
            yield con
        finally:
            con.close()

    def try_refresh(self) -> str | None:
        """:meth:`refresh`, reporting a failure as text instead of raising it."""
        try:
            self.refresh()
        except Exception as exc:  # the catalog is a convenience: nothing may fail because of it
            return f"{type(exc).__name__}: {exc}"
        return None

    def refresh(self) -> list[str]:
        """Rebuild the catalog in a fresh file and swap it in; returns the asset views created."""
        from alevor_assets.lib.registry import ModelRegistry

        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with hold(self.db_path.with_name(self.db_path.name + ".refresh.lock"), wait_seconds=300):
            for stale in self.db_path.parent.glob(f"{self.db_path.name}.*.tmp*"):
                stale.unlink(missing_ok=True)  # a refresh that died; only the lock holder writes these
            tmp = self.db_path.with_name(f"{self.db_path.name}.{uuid.uuid4().hex}.tmp")
            try:
                con = duckdb.connect(str(tmp))
                try:
                    created = self._views(con)
                    con.execute(REGISTRY_DDL)
                    rows = ModelRegistry(self.models_root).rows()
                    if rows:
                        marks = ", ".join("?" for _ in REGISTRY_COLUMNS)
                        con.executemany(
                            f"INSERT INTO model_registry VALUES ({marks})", [_registry_values(r) for r in rows]
                        )
                    con.execute(MODELS_VIEW)
                    con.execute("CHECKPOINT")
                finally:
                    con.close()
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                # A write-ahead log left by an old writer would be replayed into the new file.
                Path(str(self.db_path) + ".wal").unlink(missing_ok=True)
                os.replace(tmp, self.db_path)
            finally:
                tmp.unlink(missing_ok=True)
                Path(str(tmp) + ".wal").unlink(missing_ok=True)
        return created

    def _views(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """One view per warehouse asset with files (DuckDB rejects a view over a glob that
        matches nothing)."""
        created = []
        live = any(self.live_alerts.glob("alerts-*.parquet")) if self.live_alerts.is_dir() else False
        bases = sorted(self.warehouse_root.iterdir()) if self.warehouse_root.is_dir() else []
        for base in bases:
            if base.name.startswith(".") or not base.is_dir() or not any(base.rglob("*.parquet")):
                continue
            if base.name == "alerts":
                continue  # below, with the live alerts
            glob = str(base / "**" / "*.parquet")
            source = f"read_parquet({quote_literal(glob)}, hive_partitioning = true, union_by_name = true)"
            con.execute(f"CREATE VIEW {quote_identifier(base.name)} AS SELECT * FROM {source}")
            created.append(base.name)
        # Every spec scores into its own asset (own partitions, own failures); a desk asks "what
        # did the models say on day D" across specs, so one view unions them (rows carry `spec`).
        per_spec = [name for name in created if name.startswith(PREDICTIONS_PREFIX)]
        if per_spec and PREDICTIONS_VIEW not in created:
            union = " UNION ALL BY NAME ".join(f"SELECT * FROM {quote_identifier(n)}" for n in per_spec)
            con.execute(f"CREATE VIEW {quote_identifier(PREDICTIONS_VIEW)} AS {union}")
            created.append(PREDICTIONS_VIEW)
        if self._alerts_view(con, live):
            created.append("alerts")
        return created

    @property
    def live_alerts(self) -> Path:
        """Where the live service writes its alerts (``lib/live/store.py``)."""
        return self.db_path.parent / "live" / "alerts"

    def _alerts_view(self, con: duckdb.DuckDBPyConnection, live: bool) -> bool:
        """``alerts``: the daily partitions' alerts (``mode`` batch) and the live service's (``mode``
        live, with ``written_at``), so one query sees both; the glob is read at query time, so
        live alerts written later appear without a refresh."""
        parts = []
        batch = self.warehouse_root / "alerts"
        if batch.is_dir() and any(batch.rglob("*.parquet")):
            glob = str(batch / "**" / "*.parquet")
            parts.append(f"SELECT *, 'batch' AS mode, NULL::TIMESTAMPTZ AS written_at FROM read_parquet("
                         f"{quote_literal(glob)}, hive_partitioning = true, union_by_name = true)")
        if live:
            glob = str(self.live_alerts / "alerts-*.parquet")
            parts.append(f"SELECT * FROM read_parquet({quote_literal(glob)}, union_by_name = true)")
        if parts:
            con.execute("CREATE VIEW alerts AS " + " UNION ALL BY NAME ".join(parts))
        return bool(parts)


def _registry_values(row: dict[str, Any]) -> list[Any]:
    return [json.dumps(row.get(c), default=str) if c in _JSON_COLUMNS else row.get(c) for c in REGISTRY_COLUMNS]
