"""Load a sample of the synthetic market into PostgreSQL ``Token`` / ``Trade`` tables, so the
``postgres`` source can be tried in a minute (``make pg-sample``).

The tables follow the common Prisma layout (``Token(id, address, name, symbol)``,
``Trade(id, tokenId, price, amount, type, timestamp)``), with the indexes the source's queries use,
plus ``LabelledEvent(token, type, start_time, end_time)`` holding the synthetic ground truth.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from urllib.parse import urlsplit, urlunsplit

import polars as pl
import psycopg2
from psycopg2 import sql

from alevor_assets.lib import synthetic

SCHEMA_DDL = """
CREATE TABLE IF NOT EXISTS "Token" (
    "id" SERIAL PRIMARY KEY,
    "address" TEXT NOT NULL UNIQUE,
    "name" TEXT,
    "symbol" TEXT,
    "createdAt" TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS "Trade" (
    "id" BIGSERIAL PRIMARY KEY,
    "tokenId" INTEGER NOT NULL REFERENCES "Token"("id"),
    "price" DOUBLE PRECISION NOT NULL,
    "amount" DOUBLE PRECISION NOT NULL,
    "type" TEXT NOT NULL,
    "timestamp" TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS "Trade_timestamp_id_idx" ON "Trade" ("timestamp", "id");
CREATE INDEX IF NOT EXISTS "Trade_tokenId_timestamp_idx" ON "Trade" ("tokenId", "timestamp");
CREATE TABLE IF NOT EXISTS "LabelledEvent" (
    "token" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "start_time" TIMESTAMPTZ NOT NULL,
    "end_time" TIMESTAMPTZ NOT NULL
);
"""


def ensure_database(url: str) -> None:
    """Create the URL's database if it does not exist (connecting to ``postgres`` to do so)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    try:
        psycopg2.connect(url, connect_timeout=10).close()
        return
    except psycopg2.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    admin = urlunsplit(parts._replace(path="/postgres"))
    conn = psycopg2.connect(admin, connect_timeout=10)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()


def load_sample(url: str, cfg: synthetic.SyntheticConfig, first: date, days: int, replace: bool = True) -> dict[str, int]:
    """Write ``days`` days of the synthetic market from ``first``; returns row counts."""
    ensure_database(url)
    conn = psycopg2.connect(url, connect_timeout=10)
    try:
        with conn, conn.cursor() as cur:
            if replace:
                cur.execute('DROP TABLE IF EXISTS "Trade", "Token", "LabelledEvent"')
            cur.execute(SCHEMA_DDL)
            last = first + timedelta(days=days - 1)
            tokens = synthetic.tokens_for_day(cfg, last)
            ids = {}
            for row in tokens.iter_rows(named=True):
                cur.execute(
                    'INSERT INTO "Token" ("address", "name", "symbol", "createdAt") VALUES (%s, %s, %s, %s) '
                    'ON CONFLICT ("address") DO UPDATE SET "name" = EXCLUDED."name" RETURNING "id"',
                    [row["address"], row["name"], row["symbol"], row["created_at"]],
                )
                ids[row["token"]] = cur.fetchone()[0]
            address = dict(zip(tokens["token"], tokens["address"]))
            n_trades = n_events = 0
            for i in range(days):
                day = first + timedelta(days=i)
                trades = synthetic.trades_for_day(cfg, day).sort("ts", "trade_id")
                buf = io.StringIO()
                trades.select(
                    pl.col("token").replace_strict(ids, return_dtype=pl.Int64).alias("tokenId"),
                    "price", "amount", pl.col("side").alias("type"),
                    pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00").alias("timestamp"),
                ).write_csv(buf, include_header=False, float_precision=None)
                buf.seek(0)
                cur.copy_expert('COPY "Trade" ("tokenId", "price", "amount", "type", "timestamp") FROM STDIN WITH (FORMAT csv)', buf)
                n_trades += trades.height
                events = synthetic.events_for_day(cfg, day)
                for ev in events.iter_rows(named=True):
                    cur.execute(
                        'INSERT INTO "LabelledEvent" ("token", "type", "start_time", "end_time") '
                        'SELECT %s, %s, %s, %s WHERE NOT EXISTS (SELECT 1 FROM "LabelledEvent" '
                        'WHERE "token" = %s AND "type" = %s AND "start_time" = %s)',
                        [address[ev["token"]], ev["type"], ev["start_time"], ev["end_time"],
                         address[ev["token"]], ev["type"], ev["start_time"]],
                    )
                    n_events += cur.rowcount
            cur.execute('ANALYZE "Trade"')
    finally:
        conn.close()
    return {"tokens": len(ids), "trades": n_trades, "events": n_events}
