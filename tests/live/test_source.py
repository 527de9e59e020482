"""New trades by (timestamp, id) with the late-commit window, on the real PostgreSQL server."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl

from alevor_assets.lib.live.source import TradeStream, WindowReader
from tests.live.conftest import commit_trades, insert_tokens

T0 = datetime(2024, 1, 3, 12, tzinfo=timezone.utc)


def _trades(rows: list[tuple[int, str, float]]) -> pl.DataFrame:
    """(id, token, seconds after T0) -> raw_trades rows."""
    return pl.DataFrame({
        "token": [r[1] for r in rows], "trade_id": [r[0] for r in rows],
        "ts": [int(T0.timestamp() * 1e6 + r[2] * 1e6) for r in rows], "price": [1.0] * len(rows),
        "amount": [2.0] * len(rows), "side": ["buy"] * len(rows),
    }).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def test_each_trade_is_read_once_and_late_commits_within_the_window_are_caught(live_db):
    insert_tokens(live_db, pl.DataFrame({"token": ["A", "B"], "created_at": [None, None]}))
    stream = TradeStream(WindowReader(live_db), int(T0.timestamp() * 1e6), late_commit_us=5_000_000)
    assert stream.poll().height == 0
    commit_trades(live_db, _trades([(1, "A", 0.0), (2, "B", 4.0), (3, "A", 10.0)]))
    assert sorted(stream.poll()["trade_id"]) == [1, 2, 3]
    assert stream.poll().height == 0  # nothing new: the window's trades are not read twice
    # Committed late: 2 s and 7 s before the newest trade read; only the first is within 5 s.
    commit_trades(live_db, _trades([(4, "B", 8.0), (5, "A", 3.0), (6, "B", 11.0)]))
    assert sorted(stream.poll()["trade_id"]) == [4, 6]
    assert stream.poll().height == 0
    # Before the start: never read.
    commit_trades(live_db, _trades([(7, "A", -60.0), (8, "A", 12.0)]))
    got = stream.poll()
    assert got["trade_id"].to_list() == [8] and set(got.columns) >= {"token", "trade_id", "ts", "price", "amount", "side"}
