"""SQL-defined assets: one ``.sql`` file in ``dbt_like_sql/`` per asset, run by DuckDB.

A file starts with a YAML header in ``--`` comments (``description``, ``group``, ``inputs``,
``unique``), ended by a bare ``--`` line (comments may follow), then one SELECT. Each input names an upstream asset (and its path keys, e.g.
``interval: 1m``) and is visible to the query as a view of that name holding the partition's rows.
The query may use ``$day`` (DATE), ``$day_start`` and ``$day_end`` (TIMESTAMPTZ) as bound
parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import yaml

from alevor_assets.lib.catalog import quote_identifier

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class SqlInput:
    asset: str
    keys: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SqlAsset:
    name: str
    description: str
    group: str
    inputs: dict[str, SqlInput]
    unique: tuple[str, ...]
    query: str
    path: Path


def parse_sql_asset(path: Path) -> SqlAsset:
    text = path.read_text()
    header, body, in_header = [], [], True
    for line in text.splitlines():
        if in_header and line.startswith("--"):
            if line.strip() == "--":  # a bare "--" ends the YAML header; prose may follow
                in_header = False
            else:
                header.append(line[2:].removeprefix(" "))
        elif line.startswith("--") and not body:
            continue
        else:
            in_header = False
            if line.strip() or body:
                body.append(line)
    try:
        meta = yaml.safe_load("\n".join(header)) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: the -- header is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: the header must be a YAML mapping in -- comments")
    name = path.stem
    if not _NAME.match(name):
        raise ValueError(f"{path}: file name must be a lower_snake_case asset name")
    inputs = {}
    for alias, spec in (meta.get("inputs") or {}).items():
        if not _NAME.match(alias) or not isinstance(spec, dict) or "asset" not in spec:
            raise ValueError(f"{path}: input {alias!r} needs a lower_snake_case name and an asset")
        inputs[alias] = SqlInput(str(spec["asset"]), {str(k): str(v) for k, v in (spec.get("keys") or {}).items()})
    query = "\n".join(body).strip().rstrip(";")
    if not query.lower().startswith(("select", "with")):
        raise ValueError(f"{path}: the body must be one SELECT (or WITH ... SELECT) statement")
    return SqlAsset(
        name=name,
        description=str(meta.get("description", "")).strip(),
        group=str(meta.get("group", "sql")),
        inputs=inputs,
        unique=tuple(meta.get("unique") or ()),
        query=query,
        path=path,
    )


def load_sql_assets(directory: Path) -> list[SqlAsset]:
    return [parse_sql_asset(p) for p in sorted(Path(directory).glob("*.sql"))]


def run_sql_asset(asset: SqlAsset, inputs: dict[str, list[Path]], day: date) -> pl.DataFrame:
    """Run the query for one day with each input bound to its partition files."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    params: dict[str, Any] = {"day": day, "day_start": start, "day_end": start + timedelta(days=1)}
    used = {k: v for k, v in params.items() if f"${k}" in asset.query}
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        for alias, files in inputs.items():
            if not files:
                raise FileNotFoundError(f"{asset.name}: input {alias} has no partition files for {day}")
            listing = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
            con.execute(f"CREATE VIEW {quote_identifier(alias)} AS SELECT * FROM read_parquet({listing})")
        return con.sql(asset.query, params=used or None).pl()
