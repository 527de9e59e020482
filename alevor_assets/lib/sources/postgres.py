"""Trades from a PostgreSQL ``Token`` / ``Trade`` schema (table and column names configurable).

Reads exactly one UTC day per call, in keyset pages ordered by (timestamp, id): each page is one
short, index-friendly query (``CREATE INDEX ON "Trade" ("timestamp", "id")`` serves it) with bound
parameters, and never more than ``chunk_rows`` rows are in memory from the cursor at once. Every
identifier from configuration is quoted with ``psycopg2.sql.Identifier``, so a configured name can
only ever name a table or column. Because pages are bounded by time rather than id, trades
committed out of id order are read completely.

Values are fetched as text and converted here, so a row that cannot be converted (a text price
that is not a number, an unknown side, a trade whose token is missing) is reported with its table
and id instead of failing the whole query or vanishing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import polars as pl
import psycopg2
from psycopg2 import sql

from alevor_assets.lib.redaction import dsn_passwords, known_secrets, redact
from alevor_assets.lib.schemas import ORIGIN_COLUMN, UTC_US
from alevor_assets.lib.sources import REJECT_SCHEMA, TRADE_SCHEMA, SourceError, TradeBatch
from alevor_assets.lib.sources.events import normalize_events

# Optional Token column holding each token's creation time (token age features, young-token specs):
# used when the table has it.
CREATED_AT_KEY = "created_at"
DEFAULT_TOKEN_COLUMNS = {"id": "id", "address": "address", "name": "name", "symbol": "symbol", CREATED_AT_KEY: "createdAt"}
DEFAULT_TRADE_COLUMNS = {
    "id": "id", "token_id": "tokenId", "price": "price", "amount": "amount", "side": "type", "ts": "timestamp",
}


@dataclass(frozen=True)
class PostgresLayout:
    """Where the trades live. ``token_key`` is the Token column that becomes ``token``."""

    schema: str = "public"
    token_table: str = "Token"
    trade_table: str = "Trade"
    token_columns: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TOKEN_COLUMNS))
    trade_columns: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TRADE_COLUMNS))
    token_key: str = "address"
    # "error": refuse a `timestamp without time zone` column; "utc": read it as UTC.
    naive_timestamps: str = "error"

    def __post_init__(self) -> None:
        if self.token_key not in ("address", "symbol", "id", "name"):
            raise ValueError(f"token_key must be address, symbol, id or name, got {self.token_key!r}")
        if self.naive_timestamps not in ("error", "utc"):
            raise ValueError(f"naive_timestamps must be 'error' or 'utc', got {self.naive_timestamps!r}")
        for kind, cols, needed in (
            ("token", self.token_columns, DEFAULT_TOKEN_COLUMNS),
            ("trade", self.trade_columns, DEFAULT_TRADE_COLUMNS),
        ):
            missing = set(needed) - set(cols) - {CREATED_AT_KEY}
            if missing:
                raise ValueError(f"{kind}_columns is missing {sorted(missing)}")


def _epoch_us(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()) * 1_000_000


class PostgresTradeReader:
    def __init__(
        self,
        url: str,
        layout: PostgresLayout | None = None,
        *,
        chunk_rows: int = 200_000,
        retries: int = 5,
        backoff_seconds: float = 0.5,
        connect_timeout: int = 10,
    ):
        self.url = url
        self.layout = layout or PostgresLayout()
        self.chunk_rows = chunk_rows
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.connect_timeout = connect_timeout
        self._naive: bool | None = None

    def _safe(self, text: str) -> str:
        """``text`` with this database's password masked in every form (see lib/redaction.py)."""
        return redact(text, (*known_secrets(), *dsn_passwords(self.url)))

    @property
    def where(self) -> str:
        """The database, for messages: its URL or DSN without the password."""
        return self._safe(self.url)

    # -- connections -------------------------------------------------------------------------

    def _with_retries(self, what: str, fn):
        """Run ``fn(connection)``; transient connection failures are retried with exponential
        backoff, then reported clearly."""
        delay = self.backoff_seconds
        last: Exception | None = None
        for attempt in range(1, self.retries + 1):
            try:
                conn = psycopg2.connect(self.url, connect_timeout=self.connect_timeout)
            except psycopg2.OperationalError as exc:
                last = exc
            except psycopg2.Error as exc:  # a malformed DSN: the driver's message may quote it
                raise SourceError(self._safe(f"{what}: cannot connect to {self.url}: {str(exc).strip()}")) from None
            else:
                try:
                    conn.set_session(readonly=True, autocommit=False)
                    return fn(conn)
                except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                    last = exc
                except psycopg2.Error as exc:
                    raise SourceError(self._safe(f"{what} failed on {self.url}: {str(exc).strip()}")) from None
                finally:
                    conn.close()
            if attempt < self.retries:
                time.sleep(delay)
                delay *= 2
        raise SourceError(
            self._safe(
                f"{what}: could not reach PostgreSQL at {self.url} after {self.retries} attempts: {str(last).strip()}"
            )
        ) from None

    def _ident(self, table: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.layout.schema), sql.Identifier(table))

    def _trade_col(self, name: str, alias: str = "t") -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(self.layout.trade_columns[name]))

    def _token_col(self, name: str, alias: str = "k") -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(self.layout.token_columns[name]))

    def _timestamps_are_naive(self, conn) -> bool:
        if self._naive is None:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT data_type FROM information_schema.columns "
                    "WHERE table_schema = %s AND table_name = %s AND column_name = %s",
                    [self.layout.schema, self.layout.trade_table, self.layout.trade_columns["ts"]],
                )
                row = cur.fetchone()
            if row is None:
                raise SourceError(
                    f'table "{self.layout.schema}"."{self.layout.trade_table}" with column '
                    f'"{self.layout.trade_columns["ts"]}" does not exist in {self.where}'
                )
            naive = row[0] == "timestamp without time zone"
            if naive and self.layout.naive_timestamps == "error":
                raise SourceError(
                    f'"{self.layout.trade_table}"."{self.layout.trade_columns["ts"]}" is a timestamp '
                    "without time zone, so its instants are ambiguous; if it stores UTC, set "
                    "postgres.naive_timestamps: utc in alevor_assets/pipeline.yaml"
                )
            self._naive = naive
        return self._naive

    def _bounds(self, conn, day: date) -> tuple[datetime, datetime]:
        lo = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        hi = lo + timedelta(days=1)
        if self._timestamps_are_naive(conn):
            return lo.replace(tzinfo=None), hi.replace(tzinfo=None)
        return lo, hi

    # -- trades ------------------------------------------------------------------------------

    def _pages(self, day: date) -> Iterator[list[tuple[Any, ...]]]:
        """Keyset pages of (id, token, token_id, ts_us, price, amount, side) for ``day``."""
        ts, tid = self._trade_col("ts"), self._trade_col("id")
        query = sql.SQL(
            """SELECT {tid}, {key}::text, {token_id}::text,
                      (EXTRACT(EPOCH FROM {ts}) * 1000000)::bigint,
                      {price}::text, {amount}::text, {side}::text
               FROM {trades} AS t LEFT JOIN {tokens} AS k ON {token_pk} = {token_id}
               WHERE {ts} >= %(lo)s AND {ts} < %(hi)s
                 AND ({ts} > %(last_ts)s OR ({ts} = %(last_ts)s AND {tid} > %(last_id)s))
               ORDER BY {ts}, {tid}
               LIMIT %(limit)s"""
        ).format(
            tid=tid, ts=ts, key=self._token_col(self.layout.token_key),
            token_id=self._trade_col("token_id"), price=self._trade_col("price"), amount=self._trade_col("amount"),
            side=self._trade_col("side"), trades=self._ident(self.layout.trade_table),
            tokens=self._ident(self.layout.token_table), token_pk=self._token_col("id"),
        )
        state: dict[str, Any] = {"last_ts": None, "last_id": None}

        def fetch(conn) -> list[tuple[Any, ...]]:
            lo, hi = self._bounds(conn, day)
            last_ts = state["last_ts"] if state["last_ts"] is not None else lo - timedelta(microseconds=1)
            last_id = state["last_id"] if state["last_id"] is not None else -(2**63)
            with conn.cursor() as cur:
                cur.execute(query, {"lo": lo, "hi": hi, "last_ts": last_ts, "last_id": last_id, "limit": self.chunk_rows})
                rows = cur.fetchall()
            conn.rollback()
            if rows:
                # Resume after the exact last (ts, id); PostgreSQL timestamps are whole
                # microseconds, so this round trip is exact.
                resume = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=rows[-1][3])
                state["last_ts"] = resume.replace(tzinfo=None) if lo.tzinfo is None else resume
                state["last_id"] = rows[-1][0]
            return rows

        while True:
            rows = self._with_retries(f"reading {self.layout.trade_table} for {day}", fetch)
            if not rows:
                return
            yield rows
            if len(rows) < self.chunk_rows:
                return

    def read_day(self, day: date) -> TradeBatch:
        origin_prefix = f'"{self.layout.trade_table}" {self.layout.trade_columns["id"]}='
        frames = []
        for rows in self._pages(day):
            frames.append(
                pl.DataFrame(
                    rows,
                    schema={"trade_id": pl.Int64, "token": pl.Utf8, "token_id": pl.Utf8, "ts_us": pl.Int64,
                            "price_raw": pl.Utf8, "amount_raw": pl.Utf8, "side_raw": pl.Utf8},
                    orient="row",
                )
            )
        if not frames:
            return TradeBatch.empty()
        raw = pl.concat(frames).with_columns(
            (pl.lit(origin_prefix) + pl.col("trade_id").cast(pl.Utf8)).alias(ORIGIN_COLUMN),
            pl.col("price_raw").cast(pl.Float64, strict=False).alias("price"),
            pl.col("amount_raw").cast(pl.Float64, strict=False).alias("amount"),
            pl.col("side_raw").str.strip_chars().str.to_lowercase().alias("side"),
            pl.col("ts_us").cast(UTC_US).alias("ts"),
        )
        rule = (
            pl.when(pl.col("token").is_null())
            .then(pl.format("{} {} has no {} row", pl.lit(self.layout.trade_columns["token_id"]), pl.col("token_id"), pl.lit(self.layout.token_table)))
            .when(pl.col("price").is_null())
            .then(pl.lit("price is not a number"))
            .when(pl.col("amount").is_null())
            .then(pl.lit("amount is not a number"))
            .when(~pl.col("side").is_in(["buy", "sell"]) | pl.col("side").is_null())
            .then(pl.lit("side must be buy or sell"))
        )
        raw = raw.with_columns(rule.alias("rule"))
        rejected = raw.filter(pl.col("rule").is_not_null()).select(
            ORIGIN_COLUMN,
            "rule",
            pl.concat_str(
                [pl.col(c).fill_null("NULL") for c in ("token_id", "price_raw", "amount_raw", "side_raw")],
                separator=", ",
            ).alias("raw"),
        )
        trades = raw.filter(pl.col("rule").is_null()).select(list(TRADE_SCHEMA))
        return TradeBatch(trades.sort("token", "ts", "trade_id"), rejected.cast(REJECT_SCHEMA))

    # -- token metadata and events -----------------------------------------------------------

    def _has_token_column(self, conn, key: str) -> bool:
        column = self.layout.token_columns.get(key)
        if column is None:
            return False
        with conn.cursor() as cur:
            cur.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = %s AND column_name = %s",
                [self.layout.schema, self.layout.token_table, column],
            )
            return cur.fetchone() is not None

    def tokens(self, day: date) -> pl.DataFrame:
        """Tokens that trade on ``day``. ``created_at`` comes from the Token column mapped as
        ``created_at`` when the table has it, and is null otherwise: a token's first trade in the
        database is where the recording starts, not when the token was created."""
        token_id, ts = self._trade_col("token_id", "t2"), self._trade_col("ts", "t2")

        def fetch(conn):
            created = (
                sql.SQL("(EXTRACT(EPOCH FROM {}) * 1000000)::bigint").format(self._token_col(CREATED_AT_KEY))
                if self._has_token_column(conn, CREATED_AT_KEY) else sql.SQL("NULL::bigint")
            )
            query = sql.SQL(
                """SELECT {key}::text, {symbol}::text, {name}::text, {address}::text, {created}
                   FROM {tokens} AS k
                   WHERE {pk} IN (SELECT DISTINCT {token_id} FROM {trades} AS t2
                                  WHERE {ts} >= %(lo)s AND {ts} < %(hi)s)
                   ORDER BY 1"""
            ).format(
                key=self._token_col(self.layout.token_key), symbol=self._token_col("symbol"),
                name=self._token_col("name"), address=self._token_col("address"), created=created,
                pk=self._token_col("id"), tokens=self._ident(self.layout.token_table),
                trades=self._ident(self.layout.trade_table), token_id=token_id, ts=ts,
            )
            lo, hi = self._bounds(conn, day)
            with conn.cursor() as cur:
                cur.execute(query, {"lo": lo, "hi": hi})
                return cur.fetchall()

        rows = self._with_retries(f"reading {self.layout.token_table} for {day}", fetch)
        return pl.DataFrame(
            rows,
            schema={"token": pl.Utf8, "symbol": pl.Utf8, "name": pl.Utf8, "address": pl.Utf8, "created_at": pl.Int64},
            orient="row",
        ).with_columns(pl.col("created_at").cast(UTC_US))

    def events_table(self, table: str) -> pl.DataFrame:
        """Every event in a table (``token, type, start_time, end_time`` or ``token, class_id,
        start_time, end_time``), in the labelled_events contract."""

        def fetch(conn):
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                    [self.layout.schema, table],
                )
                cols = {r[0] for r in cur.fetchall()}
                if not cols:
                    raise SourceError(f'events table "{self.layout.schema}"."{table}" does not exist in {self.where}')
                kind = "type" if "type" in cols else "class_id" if "class_id" in cols else None
                missing = {"token", "start_time", "end_time"} - cols
                if kind is None or missing:
                    raise SourceError(
                        f'events table "{table}" needs columns token, type (or class_id), start_time, end_time; '
                        f"missing {sorted(missing | ({'type'} if kind is None else set()))}"
                    )
                cur.execute(
                    sql.SQL(
                        "SELECT token::text, {kind}::text, (EXTRACT(EPOCH FROM start_time) * 1000000)::bigint, "
                        "(EXTRACT(EPOCH FROM end_time) * 1000000)::bigint FROM {table} ORDER BY 1, 3"
                    ).format(kind=sql.Identifier(kind), table=self._ident(table))
                )
                return kind, cur.fetchall()

        kind, rows = self._with_retries(f"reading events table {table}", fetch)
        frame = pl.DataFrame(
            rows, schema={"token": pl.Utf8, kind: pl.Utf8, "start_time": pl.Int64, "end_time": pl.Int64}, orient="row"
        ).with_row_index("_row")
        frame = frame.with_columns(
            pl.col("start_time", "end_time").cast(pl.Utf8),
            pl.format('"{}" row {}', pl.lit(table), pl.col("_row") + 1).alias(ORIGIN_COLUMN),
        ).drop("_row")
        return normalize_events(frame, f'events table "{table}"')

    # -- change detection (sensors) ----------------------------------------------------------

    def newest_trade_day(self) -> date | None:
        """UTC day of the newest trade (an index-only lookup on the timestamp index)."""
        query = sql.SQL("SELECT floor(EXTRACT(EPOCH FROM max({ts})) / 86400)::bigint FROM {trades} AS t").format(
            ts=self._trade_col("ts"), trades=self._ident(self.layout.trade_table)
        )

        def fetch(conn):
            self._timestamps_are_naive(conn)
            with conn.cursor() as cur:
                cur.execute(query)
                return cur.fetchone()[0]

        day_number = self._with_retries("finding the newest trade", fetch)
        return None if day_number is None else date(1970, 1, 1) + timedelta(days=int(day_number))

    def day_fingerprints(self, first: date, last: date) -> dict[date, tuple[int, int, int, int]]:
        """Per day in ``first..last``: (trade count, max id, sum of ids, sum of row hashes). A late
        commit, even one with a smaller id or an earlier timestamp, changes its day's fingerprint;
        so does an in-place correction of a trade's token, price, amount, side or timestamp."""
        ts, tid = self._trade_col("ts"), self._trade_col("id")
        # hashtextextended (PostgreSQL 11+) gives a 64-bit hash per row; summed as numeric it cannot
        # overflow and does not depend on the order rows are scanned in. The timestamp enters as
        # epoch microseconds, so the session's TimeZone setting cannot change the hash.
        query = sql.SQL(
            """SELECT floor(EXTRACT(EPOCH FROM {ts}) / 86400)::bigint AS day_number, count(*), max({tid}), sum({tid}),
                      sum(hashtextextended(concat_ws('|', {tid}, {token_id}, {price}, {amount}, {side},
                                                        (EXTRACT(EPOCH FROM {ts}) * 1000000)::bigint), 0)::numeric)
               FROM {trades} AS t WHERE {ts} >= %(lo)s AND {ts} < %(hi)s GROUP BY 1"""
        ).format(
            ts=ts, tid=tid, token_id=self._trade_col("token_id"), price=self._trade_col("price"),
            amount=self._trade_col("amount"), side=self._trade_col("side"), trades=self._ident(self.layout.trade_table),
        )

        def fetch(conn):
            lo, _ = self._bounds(conn, first)
            _, hi = self._bounds(conn, last)
            with conn.cursor() as cur:
                cur.execute(query, {"lo": lo, "hi": hi})
                return cur.fetchall()

        rows = self._with_retries("fingerprinting trades", fetch)
        epoch = date(1970, 1, 1)
        return {epoch + timedelta(days=int(d)): (int(n), int(mx), int(sm), int(h)) for d, n, mx, sm, h in rows}
