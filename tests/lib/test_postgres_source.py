"""The postgres source against the machine's real PostgreSQL."""

from datetime import date, datetime, timedelta, timezone

import polars as pl
import psycopg2
import pytest

from alevor_assets.lib import synthetic
from alevor_assets.lib.sources import SourceError
from alevor_assets.lib.sources.pg_sample import SCHEMA_DDL, load_sample
from alevor_assets.lib.sources.postgres import PostgresLayout, PostgresTradeReader

DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(3)]
CFG = synthetic.SyntheticConfig(tokens=6, trades_per_token_day=800, launch_start=DAYS[0], launch_window_days=2)


def _plain_query(url: str, day: date) -> pl.DataFrame:
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute(
            'SELECT t.id, k.address, t.timestamp, t.price, t.amount, t.type FROM "Trade" t JOIN "Token" k ON k.id = t."tokenId" '
            "WHERE t.timestamp >= %s AND t.timestamp < %s",
            [datetime(day.year, day.month, day.day, tzinfo=timezone.utc), datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1)],
        )
        rows = cur.fetchall()
    conn.close()
    return pl.DataFrame(rows, schema=["trade_id", "token", "ts", "price", "amount", "side"], orient="row").with_columns(
        pl.col("ts").dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    )


def test_reads_exactly_what_a_plain_query_returns_in_small_pages(pg_database):
    counts = load_sample(pg_database, CFG, DAYS[0], 3)
    reader = PostgresTradeReader(pg_database, chunk_rows=500)  # many keyset pages per day
    total = 0
    for day in DAYS:
        got = reader.read_day(day)
        assert got.rejected.height == 0
        expected = _plain_query(pg_database, day).sort("trade_id")
        mine = got.trades.drop("_origin").sort("trade_id").select(expected.columns)
        assert mine.equals(expected), day
        assert got.trades["_origin"][0].startswith('"Trade" id=')
        total += got.trades.height
    assert total == counts["trades"]
    toks = reader.tokens(DAYS[1])
    assert toks["token"].to_list() == sorted(toks["token"].to_list()) and toks["created_at"].null_count() == 0
    # created_at is the Token table's own creation time (the sample stores the synthetic launch times)...
    launched = synthetic.tokens_for_day(CFG, DAYS[1]).select("address", "created_at")
    joined = toks.join(launched, left_on="token", right_on="address", suffix="_launch")
    assert joined.height == toks.height and (joined["created_at"] == joined["created_at_launch"]).all()
    # ...and without such a column it is unknown, never guessed from the first trade.
    conn = psycopg2.connect(pg_database)
    with conn, conn.cursor() as cur:
        cur.execute('ALTER TABLE "Token" DROP COLUMN "createdAt"')
    conn.close()
    assert reader.tokens(DAYS[1])["created_at"].null_count() == toks.height


def _setup(url: str, trades: list[tuple]) -> None:
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute(SCHEMA_DDL)
        cur.execute('INSERT INTO "Token" (id, address, name, symbol) VALUES (1, \'0xaa\', \'A\', \'AAA\'), (2, \'0xbb\', \'B\', \'BBB\')')
        for row in trades:
            cur.execute('INSERT INTO "Trade" (id, "tokenId", price, amount, type, timestamp) VALUES (%s, %s, %s, %s, %s, %s)', row)
    conn.close()


T = datetime(2024, 1, 2, 10, tzinfo=timezone.utc)


def test_trades_committed_out_of_id_order_are_read_completely(pg_database):
    _setup(pg_database, [(100, 1, 1.0, 1.0, "buy", T)])
    reader = PostgresTradeReader(pg_database, chunk_rows=2)
    assert reader.read_day(T.date()).trades["trade_id"].to_list() == [100]
    # Later commits with smaller ids, earlier and later in the day, and ties on the timestamp.
    _setup_more = [(5, 1, 2.0, 1.0, "sell", T - timedelta(hours=3)), (7, 2, 3.0, 1.0, "buy", T + timedelta(hours=1)),
                   (6, 1, 4.0, 1.0, "buy", T), (99, 1, 5.0, 1.0, "buy", T), (1, 2, 6.0, 1.0, "sell", T + timedelta(hours=13, minutes=59))]
    conn = psycopg2.connect(pg_database)
    with conn, conn.cursor() as cur:
        for row in _setup_more:
            cur.execute('INSERT INTO "Trade" (id, "tokenId", price, amount, type, timestamp) VALUES (%s, %s, %s, %s, %s, %s)', row)
    conn.close()
    got = reader.read_day(T.date()).trades
    assert sorted(got["trade_id"].to_list()) == [1, 5, 6, 7, 99, 100]


def test_day_fingerprints_change_with_late_commits_and_in_place_corrections_only(pg_database):
    day = T.date()
    _setup(pg_database, [(10, 1, 1.0, 2.0, "buy", T), (11, 2, 3.0, 4.0, "sell", T + timedelta(hours=1)),
                         (12, 1, 5.0, 6.0, "buy", T + timedelta(days=1))])
    reader = PostgresTradeReader(pg_database)
    first = reader.day_fingerprints(day, day + timedelta(days=1))
    assert set(first) == {day, day + timedelta(days=1)}
    assert reader.day_fingerprints(day, day + timedelta(days=1)) == first  # nothing changed, nothing differs

    def changed_after(statement: str) -> set[date]:
        before = reader.day_fingerprints(day, day + timedelta(days=1))
        conn = psycopg2.connect(pg_database)
        with conn, conn.cursor() as cur:
            cur.execute(statement)
        conn.close()
        after = reader.day_fingerprints(day, day + timedelta(days=1))
        return {d for d in before.keys() | after.keys() if before.get(d) != after.get(d)}

    # A late commit with a smaller id and an earlier timestamp than anything seen.
    assert changed_after('INSERT INTO "Trade" (id, "tokenId", price, amount, type, timestamp) '
                         "VALUES (3, 2, 1.5, 1.0, 'buy', '2024-01-02 00:00:01+00')") == {day}
    # Corrections in place: count, max id and sum of ids stay, the row hash does not.
    assert changed_after('UPDATE "Trade" SET price = 3.5 WHERE id = 11') == {day}
    assert changed_after('UPDATE "Trade" SET amount = 7.0 WHERE id = 12') == {day + timedelta(days=1)}
    assert changed_after('UPDATE "Trade" SET type = \'sell\' WHERE id = 10') == {day}
    assert changed_after('UPDATE "Trade" SET "tokenId" = 1 WHERE id = 11') == {day}
    assert changed_after("UPDATE \"Trade\" SET timestamp = timestamp + interval '1 second' WHERE id = 10") == {day}
    # Swapping two trades' prices leaves every per-column sum equal; the row hashes still differ.
    assert changed_after('UPDATE "Trade" SET price = CASE id WHEN 10 THEN 3.5 ELSE 1.0 END WHERE id IN (10, 11)') == {day}


def test_injection_in_config_names_only_ever_names_an_identifier(pg_database):
    _setup(pg_database, [(1, 1, 1.0, 1.0, "buy", T)])
    evil = "x'; DROP TABLE \"Trade\"; --"
    for layout in (PostgresLayout(trade_table=evil), PostgresLayout(token_table=evil), PostgresLayout(schema=evil),
                   PostgresLayout(trade_columns={**PostgresLayout().trade_columns, "price": evil})):
        with pytest.raises(SourceError):
            PostgresTradeReader(pg_database, layout, retries=1).read_day(T.date())
    with pytest.raises(SourceError, match="does not exist"):
        PostgresTradeReader(pg_database, retries=1).events_table(evil)
    conn = psycopg2.connect(pg_database)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM \"Trade\"")
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == ["LabelledEvent", "Token", "Trade"]
    conn.close()


def test_bad_rows_are_reported_with_their_id_and_rule(pg_database):
    conn = psycopg2.connect(pg_database)
    with conn, conn.cursor() as cur:
        cur.execute('CREATE TABLE "Token" (id int primary key, address text, name text, symbol text)')
        cur.execute('CREATE TABLE "Trade" (id bigint primary key, "tokenId" int, price text, amount text, type text, timestamp timestamptz)')
        cur.execute("INSERT INTO \"Token\" VALUES (1, '0xaa', 'A', 'AAA')")
        cur.executemany('INSERT INTO "Trade" VALUES (%s, %s, %s, %s, %s, %s)', [
            (1, 1, "1.5", "2", "BUY", T), (2, 1, "abc", "2", "sell", T), (3, 1, "1", "2", "hold", T), (4, 9, "1", "2", "buy", T),
        ])
    conn.close()
    got = PostgresTradeReader(pg_database).read_day(T.date())
    assert got.trades["trade_id"].to_list() == [1] and got.trades["side"].to_list() == ["buy"]
    rules = dict(zip(got.rejected["_origin"], got.rejected["rule"]))
    assert rules == {'"Trade" id=2': "price is not a number", '"Trade" id=3': "side must be buy or sell",
                     '"Trade" id=4': "tokenId 9 has no Token row"}


def test_naive_timestamps_are_refused_unless_declared_utc(pg_database):
    conn = psycopg2.connect(pg_database)
    with conn, conn.cursor() as cur:
        cur.execute('CREATE TABLE "Token" (id int primary key, address text, name text, symbol text)')
        cur.execute('CREATE TABLE "Trade" (id bigint primary key, "tokenId" int, price float8, amount float8, type text, timestamp timestamp(3))')
        cur.execute("INSERT INTO \"Token\" VALUES (1, '0xaa', 'A', 'AAA')")
        cur.execute('INSERT INTO "Trade" VALUES (1, 1, 2.0, 3.0, \'buy\', \'2024-01-02 23:59:59.999\')')
    conn.close()
    with pytest.raises(SourceError, match="without time zone"):
        PostgresTradeReader(pg_database).read_day(T.date())
    got = PostgresTradeReader(pg_database, PostgresLayout(naive_timestamps="utc")).read_day(T.date())
    assert got.trades["ts"].to_list() == [datetime(2024, 1, 2, 23, 59, 59, 999000, tzinfo=timezone.utc)]


def test_unreachable_database_is_retried_then_fails_clearly():
    reader = PostgresTradeReader("postgresql://alevor:secret@127.0.0.1:1/none", retries=3, backoff_seconds=0.01, connect_timeout=1)
    with pytest.raises(SourceError) as err:
        reader.read_day(T.date())
    msg = str(err.value)
    assert "after 3 attempts" in msg and "secret" not in msg and "***" in msg


def test_events_table_with_class_ids(pg_database):
    conn = psycopg2.connect(pg_database)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE ev (token text, class_id int, start_time timestamptz, end_time timestamptz)")
        cur.execute("INSERT INTO ev VALUES ('0xaa', 1, %s, %s), ('0xaa', 2, %s, %s)", [T, T + timedelta(minutes=5), T + timedelta(minutes=5), T + timedelta(minutes=9)])
    conn.close()
    ev = PostgresTradeReader(pg_database).events_table("ev")
    assert ev["type"].to_list() == ["pump", "dump"] and ev["start_time"][0] == T
