"""The DuckDB catalog at ``$ALEVOR_HOME/alevor.duckdb``: views over the Parquet warehouse and
small tables (the model registry).

DuckDB lets one process write a database file at a time, and a second process that opens it fails
at once. Every connection here therefore goes through :meth:`Catalog.connect`, which serializes
writers of this machine with an OS file lock and retries briefly when some other program (a user's
DuckDB shell, say) holds the file. Only short statements run under it; bulk data stays in Parquet.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

REGISTRY_DDL = """
CREATE TABLE IF NOT EXISTS model_registry (
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

MODELS_VIEW = """
CREATE OR REPLACE VIEW models AS
SELECT name, version, status, created_at, trainer, interval, primary_metric, primary_value,
       gate_passed, promoted_at, metrics, top_features, report_path
FROM model_registry ORDER BY name, version
"""


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class CatalogBusyError(RuntimeError):
    pass


class Catalog:
    def __init__(self, db_path: str | os.PathLike[str], wait_seconds: float = 120.0):
        self.db_path = Path(db_path)
        self.wait_seconds = wait_seconds

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection held under this machine's catalog lock (exclusive for writers)."""
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.db_path.with_name(self.db_path.name + ".lock")
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH if read_only else fcntl.LOCK_EX)
            try:
                con = self._open(read_only and self.db_path.exists())
                try:
                    yield con
                finally:
                    con.close()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.db_path), read_only=read_only)
                if not read_only:
                    con.execute(REGISTRY_DDL)
                    con.execute(MODELS_VIEW)
                return con
            except duckdb.IOException as exc:
                # Another program (outside our lock) holds the file; wait for it, then give up
                # with a message that says what to close.
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise CatalogBusyError(
                        f"cannot open {self.db_path}: {exc}. Close other programs using this "
                        "DuckDB file (a duckdb shell, a notebook) and retry."
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def refresh_views(self, warehouse_root: Path, assets: Iterable[str]) -> list[str]:
        """(Re)create one view per asset over its Parquet files; assets without files are skipped
        because DuckDB rejects a view over a glob that matches nothing."""
        created = []
        with self.connect() as con:
            for asset in assets:
                base = Path(warehouse_root) / asset
                if not any(base.rglob("*.parquet")):
                    continue
                glob = str(base / "**" / "*.parquet")
                con.execute(
                    f"CREATE OR REPLACE VIEW {quote_identifier(asset)} AS SELECT * FROM read_parquet("
                    f"{quote_literal(glob)}, hive_partitioning = true, union_by_name = true)"
                )
                created.append(asset)
        return created
