"""A built warehouse with a promoted pump detector (three synthetic days), and the third day's
trades ready to commit into a PostgreSQL database of the live test's own."""

from __future__ import annotations

import io
import shutil
from datetime import timedelta
from pathlib import Path

import polars as pl
import psycopg2
import pytest

from alevor_assets.defs.resources import AlevorStorage
from alevor_assets.lib.sources.pg_sample import SCHEMA_DDL
from tests.conftest import START

D1, D2, D3 = START, START + timedelta(days=1), START + timedelta(days=2)


@pytest.fixture(scope="package")
def built(small_market) -> AlevorStorage:
    """The small market's three days through the whole graph (shared by the session: read only)."""
    return AlevorStorage(home=str(small_market[0]))


@pytest.fixture
def home(built, tmp_path) -> Path:
    """A copy of the built ALEVOR_HOME (warehouse and registry) for one test's live files."""
    home = tmp_path / "alevor"
    for part in ("warehouse", "models"):
        shutil.copytree(built.root / part, home / part, symlinks=True)
    return home


@pytest.fixture
def live_db(pg_database):
    """A fresh database with the source's Token/Trade tables."""
    with psycopg2.connect(pg_database) as conn, conn.cursor() as cur:
        cur.execute(SCHEMA_DDL)
    return pg_database


def insert_tokens(url: str, tokens: pl.DataFrame) -> None:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        for row in tokens.iter_rows(named=True):
            cur.execute('INSERT INTO "Token" ("address", "name", "symbol", "createdAt") VALUES (%s, %s, %s, %s)',
                        [row["token"], row["token"], row["token"], row.get("created_at")])


def with_row_ids(trades: pl.DataFrame) -> pl.DataFrame:
    """The trades in (ts, trade_id) order with database ids 1, 2, ...: synthetic trade ids are
    unique per token only, and these keep each token's (ts, id) order, which is all bars read."""
    ordered = trades.sort("ts", "trade_id", "token")
    return ordered.with_columns(pl.int_range(1, ordered.height + 1, dtype=pl.Int64).alias("trade_id"))


def commit_trades(url: str, trades: pl.DataFrame) -> None:
    """Commit ``trades`` (raw_trades columns) in one transaction, keeping their trade ids."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute('SELECT "address", "id" FROM "Token"')
        ids = dict(cur.fetchall())
        buf = io.StringIO()
        trades.select(
            pl.col("trade_id").alias("id"), pl.col("token").replace_strict(ids, return_dtype=pl.Int64).alias("tokenId"),
            "price", "amount", pl.col("side").alias("type"),
            pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00").alias("timestamp"),
        ).write_csv(buf, include_header=False, float_precision=None)
        buf.seek(0)
        cur.copy_expert('COPY "Trade" ("id", "tokenId", "price", "amount", "type", "timestamp") FROM STDIN WITH (FORMAT csv)', buf)
