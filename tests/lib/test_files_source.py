import gzip
import os
import re
import zipfile
from datetime import date, datetime, timezone

import polars as pl
import pytest

from alevor_assets.lib.schemas import UTC_US
from alevor_assets.lib.sources import REJECT_SCHEMA, TRADE_SCHEMA, SourceError
from alevor_assets.lib.sources.files import reading as files_module
from alevor_assets.lib.sources.files import FORMATS, FileTradeReader

DAY = date(2024, 1, 1)
NEXT = date(2024, 1, 2)
T0_MS = 1704067200000  # 2024-01-01 00:00:00 UTC


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def _rejected(batch):
    return {r["_origin"]: (r["rule"], r["raw"]) for r in batch.rejected.to_dicts()}


CANONICAL = """token,ts,price,amount,side
AAA,2024-01-01T00:00:01Z,10.0,1.5,buy
BBB,2024-01-01T00:00:02.250+00:00,20.0,2.0,sell
AAA,2024-01-01T02:00:00+02:00,11.0,0.5,SELL
"""


def test_formats_and_unknown_format():
    assert FORMATS == ("auto", "canonical", "ccxt", "binance_aggtrades")
    with pytest.raises(ValueError, match="unknown file format 'xlsx'"):
        FileTradeReader("*.csv", fmt="xlsx")


def test_canonical_csv(tmp_path):
    path = _write(tmp_path / "trades.csv", CANONICAL)
    batch = FileTradeReader(str(tmp_path / "*.csv")).read_day(DAY)
    assert batch.trades.schema == pl.Schema(TRADE_SCHEMA)
    assert batch.rejected.schema == pl.Schema(REJECT_SCHEMA) and batch.rejected.height == 0
    rows = batch.trades.to_dicts()
    # sorted by (token, ts, trade_id); +02:00 converted to UTC; side lower-cased
    assert [(r["token"], r["ts"], r["price"], r["amount"], r["side"], r["_origin"]) for r in rows] == [
        ("AAA", _utc(2024, 1, 1, 0, 0, 0), 11.0, 0.5, "sell", f"{path}:4"),
        ("AAA", _utc(2024, 1, 1, 0, 0, 1), 10.0, 1.5, "buy", f"{path}:2"),
        ("BBB", _utc(2024, 1, 1, 0, 0, 2, 250000), 20.0, 2.0, "sell", f"{path}:3"),
    ]
    assert rows[0]["trade_id"] == T0_MS * 4096
    assert rows[1]["trade_id"] == (T0_MS + 1000) * 4096


def test_canonical_csv_with_trade_ids_and_epoch_ts(tmp_path):
    _write(
        tmp_path / "t.csv",
        "token,trade_id,ts,price,amount,side\n"
        f"AAA,7,{T0_MS // 1000},1,1,buy\n"  # seconds
        f"AAA,8,{T0_MS + 5},1,1,buy\n"  # milliseconds
        f"AAA,9,{(T0_MS + 6) * 1000 + 1},1,1,buy\n",  # microseconds
    )
    trades = FileTradeReader(str(tmp_path / "t.csv")).read_day(DAY).trades
    assert trades["trade_id"].to_list() == [7, 8, 9]
    assert trades["ts"].to_list() == [_utc(2024, 1, 1), _utc(2024, 1, 1, 0, 0, 0, 5000), _utc(2024, 1, 1, 0, 0, 0, 6001)]


def test_canonical_parquet(tmp_path):
    path = tmp_path / "t.parquet"
    pl.DataFrame(
        {
            "token": ["AAA", "AAA", "BBB"],
            "trade_id": [1, 2, 3],
            "ts": [_utc(2024, 1, 1, 0, 0, 1), _utc(2024, 1, 2, 0, 0, 1), _utc(2024, 1, 1, 0, 0, 3)],
            "price": [1.0, 2.0, 3.0],
            "amount": [1.0, 1.0, 1.0],
            "side": ["buy", "sell", "hold"],
        },
        schema_overrides={"ts": pl.Datetime("ns", "Europe/Paris")},
    ).write_parquet(path)
    batch = FileTradeReader(str(path)).read_day(DAY)
    assert batch.trades.schema == pl.Schema(TRADE_SCHEMA)
    assert batch.trades.select("token", "trade_id", "ts", "_origin").rows() == [
        ("AAA", 1, _utc(2024, 1, 1, 0, 0, 1), f"{path}:row 0"),
    ]
    assert batch.rejected.rows() == [
        (f"{path}:row 2", "side must be buy or sell",
         '{"token": "BBB", "trade_id": 3, "ts": "2024-01-01 01:00:03+01:00", "price": 3.0, "amount": 1.0, "side": "hold"}'),
    ]


def test_parquet_naive_timestamp_column_is_a_source_error(tmp_path):
    path = tmp_path / "naive.parquet"
    pl.DataFrame(
        {"token": ["A"], "ts": [datetime(2024, 1, 1)], "price": [1.0], "amount": [1.0], "side": ["buy"]}
    ).write_parquet(path)
    with pytest.raises(SourceError, match=re.escape(f"{path}: column ts is a timestamp without time zone")):
        FileTradeReader(str(path)).read_day(DAY)


CCXT = """id,timestamp,datetime,symbol,order,type,side,takerOrMaker,price,amount,cost,fee
101,1704067201000,2024-01-01T00:00:01.000Z,BTC/USDT,,limit,buy,taker,42000.5,0.01,420.005,
102,1704067202500,2024-01-01T00:00:02.500Z,BTC/USDT,,,sell,maker,42001,0.02,840.02,
103,1704153600000,2024-01-02T00:00:00.000Z,ETH/USDT,,,buy,taker,2300,1,2300,
"""


def test_ccxt_export(tmp_path):
    path = _write(tmp_path / "export.csv", CCXT)
    batch = FileTradeReader(str(path)).read_day(DAY)
    assert batch.rejected.height == 0
    assert batch.trades.select("token", "trade_id", "ts", "price", "amount", "side", "_origin").rows() == [
        ("BTC/USDT", 101, _utc(2024, 1, 1, 0, 0, 1), 42000.5, 0.01, "buy", f"{path}:2"),
        ("BTC/USDT", 102, _utc(2024, 1, 1, 0, 0, 2, 500000), 42001.0, 0.02, "sell", f"{path}:3"),
    ]
    assert FileTradeReader(str(path), fmt="ccxt").read_day(NEXT).trades["token"].to_list() == ["ETH/USDT"]


def test_ccxt_ids_that_are_not_all_integers_are_replaced_by_derived_ids(tmp_path):
    _write(
        tmp_path / "export.csv",
        "symbol,timestamp,datetime,side,price,amount,id\n"
        "SOL/USDT,1704067200000,x,buy,100,1,12\n"
        "SOL/USDT,1704067200000,x,buy,101,1,a7f3-uuid\n",
    )
    trades = FileTradeReader(str(tmp_path / "export.csv")).read_day(DAY).trades
    assert trades["trade_id"].to_list() == [T0_MS * 4096, T0_MS * 4096 + 1]


BINANCE_ROWS = [
    "1001,42283.58,0.005,2001,2001,{t0},true,true",
    "1002,42283.59,0.100,2002,2004,{t1},False,true",
    "1003,42283.60,0.200,2005,2005,{t2},TRUE,true",
]


def _binance(ms=True, header=True):
    t = [T0_MS, T0_MS + 1, T0_MS + 2]
    if not ms:
        t = [v * 1000 + 7 for v in t]
    lines = [r.format(t0=t[0], t1=t[1], t2=t[2]) for r in BINANCE_ROWS]
    head = ["agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,is_best_match"]
    return "\n".join((head if header else []) + lines) + "\n"


def test_binance_aggtrades_with_header(tmp_path):
    path = _write(tmp_path / "BTCUSDT-aggTrades-2024-01-01.csv", _binance(header=True))
    batch = FileTradeReader(str(path)).read_day(DAY)
    assert batch.rejected.height == 0
    assert batch.trades.select("token", "trade_id", "price", "amount", "side", "_origin").rows() == [
        ("BTCUSDT", 1001, 42283.58, 0.005, "sell", f"{path}:2"),
        ("BTCUSDT", 1002, 42283.59, 0.1, "buy", f"{path}:3"),
        ("BTCUSDT", 1003, 42283.60, 0.2, "sell", f"{path}:4"),
    ]


def test_binance_aggtrades_without_header_token_from_file_name(tmp_path):
    path = _write(tmp_path / "data" / "ETHUSDT-aggTrades-2024-01-01.csv", _binance(header=False))
    batch = FileTradeReader(str(tmp_path / "**" / "*.csv")).read_day(DAY)
    assert batch.trades["token"].unique().to_list() == ["ETHUSDT"]
    assert batch.trades["_origin"].to_list() == [f"{path}:1", f"{path}:2", f"{path}:3"]
    assert batch.trades["ts"].to_list() == [
        _utc(2024, 1, 1), _utc(2024, 1, 1, 0, 0, 0, 1000), _utc(2024, 1, 1, 0, 0, 0, 2000),
    ]


def test_binance_microseconds_and_milliseconds(tmp_path):
    _write(tmp_path / "ms" / "BTCUSDT-aggTrades-2024-12-31.csv", _binance(ms=True, header=False))
    _write(tmp_path / "us" / "ETHUSDT-aggTrades-2025-01-01.csv", _binance(ms=False, header=False))
    trades = FileTradeReader(str(tmp_path / "*" / "*.csv")).read_day(DAY).trades
    by_token = {t: g["ts"].to_list() for t, g in trades.group_by("token", maintain_order=True)}
    assert by_token[("BTCUSDT",)] == [_utc(2024, 1, 1, 0, 0, 0, 1000 * i) for i in range(3)]
    assert by_token[("ETHUSDT",)] == [_utc(2024, 1, 1, 0, 0, 0, 1000 * i + 7) for i in range(3)]


def test_binance_zip(tmp_path):
    path = tmp_path / "BNBUSDT-aggTrades-2024-01.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("SOLUSDT-aggTrades-2024-01-01.csv", _binance(header=False))
    reader = FileTradeReader(str(tmp_path / "*"))
    assert reader.files() == [path]
    batch = reader.read_day(DAY)
    assert batch.trades["token"].unique().to_list() == ["SOLUSDT"]  # the member's name, not the zip's
    assert batch.trades["_origin"].to_list() == [f"{path}!SOLUSDT-aggTrades-2024-01-01.csv:{n}" for n in (1, 2, 3)]


def test_binance_bad_lines_in_zip_and_gz(tmp_path):
    text = _binance(header=True).replace("1002,42283.59", "1002,x") + "1004,1,1,1,1\n"
    zpath = tmp_path / "z" / "ADAUSDT-aggTrades.zip"
    zpath.parent.mkdir()
    with zipfile.ZipFile(zpath, "w") as archive:
        archive.writestr("ADAUSDT-aggTrades-2024-01-01.csv", text)
    gpath = tmp_path / "g" / "XRPUSDT-aggTrades-2024-01-01.csv.gz"
    gpath.parent.mkdir()
    gpath.write_bytes(gzip.compress(text.encode()))
    for path, origin in ((zpath, f"{zpath}!ADAUSDT-aggTrades-2024-01-01.csv"), (gpath, str(gpath))):
        batch = FileTradeReader(str(path)).read_day(DAY)
        assert batch.trades["trade_id"].to_list() == [1001, 1003]
        assert _rejected(batch) == {
            f"{origin}:3": ("price is not a number", f"1002,x,0.100,2002,2004,{T0_MS + 1},False,true"),
            f"{origin}:5": ("line has 5 fields, expected 8", "1004,1,1,1,1"),
        }


def test_binance_is_buyer_maker_must_be_boolean(tmp_path):
    path = _write(tmp_path / "BTCUSDT-aggTrades.csv", _binance(header=False).replace("False", "maybe"))
    batch = FileTradeReader(str(path)).read_day(DAY)
    assert _rejected(batch) == {f"{path}:2": ("is_buyer_maker must be true or false", f"1002,42283.59,0.100,2002,2004,{T0_MS + 1},maybe,true")}
    assert 1002 not in batch.trades["trade_id"].to_list()


def test_derived_ids_are_deterministic_and_follow_the_duplicate_rule(tmp_path):
    row = "AAA,2024-01-01T00:00:00.000100Z,1.0,2.0,buy"
    other = "AAA,2024-01-01T00:00:00.000900Z,1.5,2.0,sell"
    a = _write(tmp_path / "a.csv", f"token,ts,price,amount,side\n{row}\n{other}\n{row}\n")
    # b repeats a's two identical fills and the other trade (overlapping export) and has one more fill
    b = _write(tmp_path / "b.csv", f"token,ts,price,amount,side\n{row}\n{row}\n{other}\n{row}\n")
    reader = FileTradeReader(str(tmp_path / "*.csv"))
    first = reader.read_day(DAY).trades
    assert first.equals(FileTradeReader(str(tmp_path / "*.csv")).read_day(DAY).trades)
    assert first.equals(reader.read_day(DAY).trades)
    base = T0_MS * 4096
    # k follows (file path, line): a:2, a:3, a:4 are k 0..2; b's first two fills and its `other`
    # are the same trades as a's; b's third fill (line 5) is a new trade.
    assert sorted(zip(first["trade_id"].to_list(), first["_origin"].to_list())) == [
        (base + 0, f"{a}:2"), (base + 1, f"{a}:3"), (base + 2, f"{a}:4"), (base + 3, f"{b}:5"),
    ]
    assert first["trade_id"].is_unique().all()


def test_identical_rows_within_one_file_are_separate_trades(tmp_path):
    row = "AAA,2024-01-01T00:00:00Z,1.0,2.0,buy"
    _write(tmp_path / "a.csv", f"token,ts,price,amount,side\n{row}\n{row}\n{row}\n")
    trades = FileTradeReader(str(tmp_path / "a.csv")).read_day(DAY).trades
    assert trades["trade_id"].to_list() == [T0_MS * 4096 + k for k in range(3)]


def test_more_than_4096_trades_in_one_millisecond_is_a_source_error(tmp_path):
    body = "".join(f"AAA,2024-01-01T00:00:00Z,{i},1,buy\n" for i in range(4097))
    _write(tmp_path / "a.csv", "token,ts,price,amount,side\n" + body)
    with pytest.raises(SourceError, match="token AAA has more than 4096 trades without trade id"):
        FileTradeReader(str(tmp_path / "a.csv")).read_day(DAY)


def test_day_filtering_of_a_file_spanning_two_days(tmp_path):
    path = _write(
        tmp_path / "t.csv",
        "token,ts,price,amount,side\n"
        "AAA,2023-12-31T23:59:59.999999Z,1,1,buy\n"
        "AAA,2024-01-01T00:00:00Z,2,1,buy\n"
        "AAA,2024-01-01T23:59:59.999999Z,3,1,buy\n"
        "AAA,2024-01-02T00:00:00Z,4,1,buy\n",
    )
    reader = FileTradeReader(str(path))
    assert reader.read_day(DAY).trades["price"].to_list() == [2.0, 3.0]
    assert reader.read_day(NEXT).trades["price"].to_list() == [4.0]
    assert reader.read_day(date(2023, 12, 31)).trades["price"].to_list() == [1.0]
    assert reader.read_day(date(2024, 1, 3)).trades.height == 0


BAD = """token,ts,price,amount,side
AAA,2024-01-01T00:00:01Z,10,1,buy
AAA,2024-01-01T00:00:02Z,10,1
AAA,2024-01-01T00:00:03Z,abc,1,buy
AAA,yesterday,10,1,buy
AAA,2024-01-01T00:00:05,10,1,buy
AAA,2024-01-01T00:00:06Z,10,1,hold
AAA,2024-01-01T00:00:07Z,-1,0,sell
AAA,2024-01-01T00:00:08Z,NaN,1,buy
AAA,2024-01-01T00:00:09Z,10,1,buy,extra
AAA,2024-01-02T00:00:00Z,10,1,hold
AAA,2024-01-01T00:00:11Z,,1,buy
"""


def test_bad_rows_are_rejected_with_rule_origin_and_raw_line(tmp_path):
    path = _write(tmp_path / "bad.csv", BAD)
    reader = FileTradeReader(str(path))
    batch = reader.read_day(DAY)
    undated = {
        f"{path}:3": ("line has 4 fields, expected 5", "AAA,2024-01-01T00:00:02Z,10,1"),
        f"{path}:5": ("timestamp is not a valid time", "AAA,yesterday,10,1,buy"),
        f"{path}:6": ("timestamp has no time zone", "AAA,2024-01-01T00:00:05,10,1,buy"),
        f"{path}:10": ("line has 6 fields, expected 5", "AAA,2024-01-01T00:00:09Z,10,1,buy,extra"),
    }
    assert _rejected(batch) == {
        **undated,
        f"{path}:4": ("price is not a number", "AAA,2024-01-01T00:00:03Z,abc,1,buy"),
        f"{path}:7": ("side must be buy or sell", "AAA,2024-01-01T00:00:06Z,10,1,hold"),
        f"{path}:12": ("price is missing", "AAA,2024-01-01T00:00:11Z,,1,buy"),
    }
    # rejected rows are not trades; non-positive and NaN values pass through for the contract check
    assert batch.trades["_origin"].to_list() == [f"{path}:2", f"{path}:8", f"{path}:9"]
    prices = batch.trades["price"].to_list()
    assert prices[1] == -1.0 and prices[2] != prices[2] and batch.trades["amount"].to_list()[1] == 0.0
    # rows whose time is unknown come back on every day; dated rejects only on their day
    assert _rejected(reader.read_day(NEXT)) == {**undated, f"{path}:11": ("side must be buy or sell", "AAA,2024-01-02T00:00:00Z,10,1,hold")}
    assert _rejected(reader.read_day(date(2030, 1, 1))) == undated


def test_every_data_line_ends_up_in_trades_or_rejected(tmp_path):
    path = _write(tmp_path / "bad.csv", BAD)
    reader = FileTradeReader(str(path))
    days = [DAY, NEXT]
    seen = []
    for i, day in enumerate(days):
        batch = reader.read_day(day)
        seen += batch.trades["_origin"].to_list()
        rejected = batch.rejected["_origin"].to_list()
        undated = {f"{path}:{n}" for n in (3, 5, 6, 10)}
        seen += [o for o in rejected if o not in undated or i == 0]
    assert sorted(seen, key=lambda o: int(o.rsplit(":", 1)[1])) == [f"{path}:{n}" for n in range(2, 13)]


def test_blank_lines_and_quotes_keep_physical_line_numbers(tmp_path):
    path = _write(
        tmp_path / "t.csv",
        'token,ts,price,amount,side\n\nAAA,2024-01-01T00:00:01Z,1,1,buy\n"BBB",2024-01-01T00:00:02Z,"2",1,buy\n',
    )
    trades = FileTradeReader(str(path)).read_day(DAY).trades
    assert trades.select("token", "price", "_origin").rows() == [("AAA", 1.0, f"{path}:3"), ("BBB", 2.0, f"{path}:4")]


def test_missing_column_names_file_and_column(tmp_path):
    path = _write(tmp_path / "t.csv", "token,ts,amount,side\nAAA,2024-01-01T00:00:01Z,1,buy\n")
    with pytest.raises(SourceError, match=re.escape(f"{path}: missing column price (format canonical")):
        FileTradeReader(str(path)).read_day(DAY)
    ccxt = _write(tmp_path / "x.csv", "symbol,timestamp,side,price\nA/B,1704067200000,buy,1\n")
    with pytest.raises(SourceError, match=re.escape(f"{ccxt}: missing column amount (format ccxt")):
        FileTradeReader(str(ccxt), fmt="ccxt").read_day(DAY)


def test_undetectable_format_names_file_and_the_formats(tmp_path):
    path = _write(tmp_path / "t.csv", "when,what,how_much\n1,2,3\n")
    with pytest.raises(SourceError) as info:
        FileTradeReader(str(path)).read_day(DAY)
    message = str(info.value)
    assert message.startswith(f"{path}: the format could not be detected from the columns [when, what, how_much]")
    for fmt in ("canonical", "ccxt", "binance_aggtrades"):
        assert fmt in message


def test_no_matching_files(tmp_path):
    pattern = str(tmp_path / "*.csv")
    with pytest.raises(SourceError, match=re.escape(f"no files match {pattern}")):
        FileTradeReader(pattern).read_day(DAY)


def test_tokens_are_listed_from_their_first_trade_but_their_creation_time_is_unknown(tmp_path):
    _write(tmp_path / "a.csv", "token,ts,price,amount,side\nAAA,2024-01-01T05:00:00Z,1,1,buy\nCCC,2024-01-03T00:00:00Z,1,1,buy\n")
    _write(tmp_path / "b.csv", "token,ts,price,amount,side\nAAA,2023-12-31T22:00:00Z,1,1,buy\nBBB,2024-01-01T23:00:00Z,1,1,buy\n")
    tokens = FileTradeReader(str(tmp_path / "*.csv")).tokens(DAY)
    assert tokens.schema == pl.Schema(
        {"token": pl.String, "symbol": pl.String, "name": pl.String, "address": pl.String, "created_at": UTC_US}
    )
    # Listed once they traded; an export's first trade is not a creation time, so none is guessed.
    assert tokens.rows() == [("AAA", "AAA", None, None, None), ("BBB", "BBB", None, None, None)]
    assert FileTradeReader(str(tmp_path / "*.csv")).tokens(date(2024, 1, 3))["token"].to_list() == ["AAA", "BBB", "CCC"]


def test_files_and_fingerprint(tmp_path):
    a = _write(tmp_path / "b" / "x.csv", CANONICAL)
    b = _write(tmp_path / "a" / "deep" / "y.parquet", "")
    _write(tmp_path / "a" / "notes.txt", "not a trade file")
    reader = FileTradeReader(str(tmp_path / "**" / "*"))
    assert reader.files() == [b, a]
    before = reader.fingerprint()
    assert set(before) == {str(a), str(b)} and before[str(a)] == (a.stat().st_mtime_ns, a.stat().st_size)
    a.write_text(CANONICAL + "CCC,2024-01-01T00:00:09Z,1,1,buy\n")
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 1_000_000_000))
    after = reader.fingerprint()
    assert after[str(a)] != before[str(a)] and after[str(b)] == before[str(b)]


def test_changed_file_is_read_again(tmp_path):
    path = _write(tmp_path / "t.csv", CANONICAL)
    reader = FileTradeReader(str(path))
    assert reader.read_day(DAY).trades.height == 3
    path.write_text(CANONICAL + "CCC,2024-01-01T00:00:09Z,1,1,buy\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    assert reader.read_day(DAY).trades.height == 4
    assert reader.tokens(DAY)["token"].to_list() == ["AAA", "BBB", "CCC"]


def test_reading_many_days_parses_each_file_once(tmp_path, monkeypatch):
    days = [date(2024, 1, d) for d in range(1, 6)]
    for day in days:
        start = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)
        rows = "".join(f"{i},1,1,{i},{i},{start + i * 1000},false,true\n" for i in range(3))
        _write(tmp_path / f"BTCUSDT-aggTrades-{day}.csv", rows)
    monkeypatch.setattr(files_module, "PARSED_CACHE_ROWS", 0)  # only the per-file metadata is kept
    parsed = []
    real = files_module._parse_file
    monkeypatch.setattr(files_module, "_parse_file", lambda path, fmt: parsed.append(path.name) or real(path, fmt))
    reader = FileTradeReader(str(tmp_path / "*.csv"))
    for day in days:
        assert reader.read_day(day).trades.height == 3
    # the first day parses every file once (to learn its span); later days parse only their file
    assert len(parsed) == len(days) + len(days) - 1
    assert sorted(set(parsed)) == sorted(p.name for p in reader.files())


def test_empty_and_header_only_files_hold_no_trades(tmp_path):
    _write(tmp_path / "empty.csv", "")
    _write(tmp_path / "header.csv", "token,ts,price,amount,side\n")
    _write(tmp_path / "z.csv", CANONICAL)
    batch = FileTradeReader(str(tmp_path / "*.csv")).read_day(DAY)
    assert batch.trades.height == 3 and batch.rejected.height == 0


def test_undecodable_line_is_rejected(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(CANONICAL.encode() + b"AAA,2024-01-01T00:00:09Z,1,1,b\xffy\n")
    batch = FileTradeReader(str(path)).read_day(DAY)
    assert batch.trades.height == 3
    # The undecodable byte is shown escaped, never pasted raw into a message.
    assert _rejected(batch) == {f"{path}:5": ("line is not valid UTF-8", "AAA,2024-01-01T00:00:09Z,1,1,b\\xffy")}


def test_overlapping_binance_exports_with_trade_ids_appear_once(tmp_path):
    daily = _write(tmp_path / "a" / "BTCUSDT-aggTrades-2024-01-01.csv", _binance(header=False))
    monthly = tmp_path / "b" / "BTCUSDT-aggTrades-2024-01.zip"
    monthly.parent.mkdir()
    with zipfile.ZipFile(monthly, "w") as archive:
        archive.writestr("BTCUSDT-aggTrades-2024-01.csv", _binance(header=True))
    trades = FileTradeReader(str(tmp_path / "*" / "*")).read_day(DAY).trades
    assert trades["trade_id"].to_list() == [1001, 1002, 1003]
    assert trades["_origin"].to_list() == [f"{daily}:{n}" for n in (1, 2, 3)]
