"""Real sources through the real assets: files, PostgreSQL, events, and bad input."""

from datetime import date, datetime, timedelta, timezone

import dagster as dg
import polars as pl
import psycopg2
import pytest

from alevor_assets.defs.market_data.assets import bars, labelled_events, raw_trades
from alevor_assets.defs.resources import FilesSource, PostgresSource
from alevor_assets.lib import synthetic
from alevor_assets.lib.sources.pg_sample import load_sample
from tests.conftest import small_settings
from tests.helpers import materialize_range

D1 = date(2024, 3, 1)
T1 = int(datetime(2024, 3, 1, tzinfo=timezone.utc).timestamp() * 1000)


def _resources(storage, source):
    return {"storage": storage, "settings": small_settings(), "source": source}


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(e.event_specific_data.error.to_string() for e in result.all_events if e.event_type_value == "STEP_FAILURE")


def _binance_lines(day_ms: int, n: int = 50) -> list[str]:
    return [f"{1000 + i},{100 + i * 0.5},{1 + i % 3},{5000 + i},{5000 + i},{day_ms + i * 60_000},{'true' if i % 2 else 'false'},true" for i in range(n)]


def test_files_source_feeds_the_graph(tmp_path, storage, instance):
    data = tmp_path / "data"
    data.mkdir()
    (data / "BTCUSDT-aggTrades-2024-03-01.csv").write_text("\n".join(_binance_lines(T1)) + "\n")
    (data / "ETHUSDT-aggTrades-2024-03-01.csv").write_text(
        "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
        + "\n".join(line.rsplit(",", 1)[0] for line in _binance_lines(T1 * 1000 + 5, 20)).replace(f",{T1 * 1000 + 5}", f",{T1 * 1000 + 5}") + "\n"
    )
    source = FilesSource(pattern=str(data / "*.csv"))
    result = materialize_range(D1, D1, resources=_resources(storage, source), instance=instance, assets=[raw_trades, bars])
    assert result.success
    trades = storage.warehouse.read_partition("raw_trades", D1)
    assert trades.group_by("token").len().sort("token").rows() == [("BTCUSDT", 50), ("ETHUSDT", 20)]
    assert trades.filter(pl.col("token") == "BTCUSDT")["side"].to_list()[:2] == ["buy", "sell"]
    assert storage.warehouse.read_partition("bars", D1, {"interval": "1m"})["trade_count"].sum() == 70


BAD_CASES = {
    "unparseable line": ("1000,100.5,1,5000,5000\n", "line has 5 fields, expected"),
    "wrong type": ("1000,abc,1,5000,5000,{ts},true,true\n", "price is not a number"),
    "unknown side": ("1000,100.5,1,5000,5000,{ts},maybe,true\n", "is_buyer_maker must be true or false"),
    "non-positive price": ("1000,-3,1,5000,5000,{ts},true,true\n", "greater_than(0)"),
    "non-positive amount": ("1000,3,0,5000,5000,{ts},true,true\n", "greater_than(0)"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_binance_input_fails_naming_file_line_and_rule_and_writes_nothing(case, tmp_path, storage, instance):
    bad_line, rule = BAD_CASES[case]
    path = tmp_path / "BTCUSDT-aggTrades-2024-03-01.csv"
    good = _binance_lines(T1 + 1000, 5)
    path.write_text("\n".join(good[:3]) + "\n" + bad_line.format(ts=T1 + 500) + "\n".join(good[3:]) + "\n")
    result = materialize_range(D1, D1, resources=_resources(storage, FilesSource(pattern=str(path))), instance=instance,
                               assets=[raw_trades, bars], raise_on_error=False)
    assert not result.success
    text = _failure_text(result)
    assert rule in text and f"{path}:4" in text, text
    assert not list(storage.warehouse.root.rglob("*.parquet"))  # nothing written at all


@pytest.mark.parametrize(
    ("header", "row", "rule"),
    [
        ("token,ts,price,amount,side", "A,2024-03-01T10:00:00,1.0,1.0,buy", "timestamp has no time zone"),
        ("token,ts,price,amount,side", "A,2024-03-01T10:00:00Z,1.0,1.0,hold", "side must be buy or sell"),
        ("token,ts,price,amount,side", "A,2024-03-01T10:00:00Z,NaN,1.0,buy", "not null or NaN"),
        ("symbol,timestamp,datetime,side,price,amount", f"BTC/USDT,{T1},x,buy,1.0,abc", "amount is not a number"),
    ],
)
def test_bad_canonical_and_ccxt_rows(header, row, rule, tmp_path, storage, instance):
    path = tmp_path / "trades.csv"
    ok = "A,2024-03-01T09:00:00Z,1.0,1.0,sell" if header.startswith("token") else f"BTC/USDT,{T1 + 5},x,sell,1.0,2.0"
    path.write_text(f"{header}\n{ok}\n{row}\n")
    result = materialize_range(D1, D1, resources=_resources(storage, FilesSource(pattern=str(path))), instance=instance,
                               assets=[raw_trades], raise_on_error=False)
    assert not result.success
    text = _failure_text(result)
    assert rule in text and f"{path}:3" in text, text
    assert not list(storage.warehouse.root.rglob("*.parquet"))


def test_missing_column_is_a_clear_error(tmp_path, storage, instance):
    path = tmp_path / "trades.csv"
    path.write_text("token,ts,amount,side\nA,2024-03-01T09:00:00Z,1.0,sell\n")
    result = materialize_range(D1, D1, resources=_resources(storage, FilesSource(pattern=str(path), format="canonical")),
                               instance=instance, assets=[raw_trades], raise_on_error=False)
    assert not result.success
    text = _failure_text(result)
    assert str(path) in text and "price" in text
    assert not list(storage.warehouse.root.rglob("*.parquet"))


def test_skip_bad_rows_publishes_the_rest_and_counts_and_keeps_the_skipped(tmp_path, storage, instance):
    path = tmp_path / "BTCUSDT-aggTrades-2024-03-01.csv"
    good = _binance_lines(T1, 10)
    path.write_text("\n".join(good) + f"\n2000,-1,1,1,1,{T1 + 7},true,true\nnot,a,line\n")
    result = dg.materialize(
        [raw_trades], instance=instance, resources=_resources(storage, FilesSource(pattern=str(path))),
        partition_key=D1.isoformat(), run_config={"ops": {"raw_trades": {"config": {"skip_bad_rows": True}}}},
    )
    assert result.success
    assert storage.warehouse.read_partition("raw_trades", D1).height == 10
    [mat] = result.get_asset_materialization_events()
    assert mat.materialization.metadata["skipped_rows"].value == 2
    checks = {e.event_specific_data.check_name: e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks["check_contract"].passed and not checks["check_no_skipped_rows"].passed
    kept = list((storage.quarantine / "raw_trades").rglob("*.parquet"))
    assert {p.name for p in kept} == {"skipped_rows.parquet", "rejected_lines.parquet"}
    assert sum(pl.read_parquet(p).height for p in kept) == 2


def test_postgres_source_through_the_assets(pg_database, storage, instance):
    first = date(2024, 1, 1)
    cfg = synthetic.SyntheticConfig(tokens=5, trades_per_token_day=600, launch_start=first, launch_window_days=2)
    counts = load_sample(pg_database, cfg, first, 3)
    source = PostgresSource(url=pg_database, events="table:LabelledEvent", chunk_rows=700)
    result = materialize_range(first, first + timedelta(days=2), resources=_resources(storage, source), instance=instance,
                               assets=[raw_trades, bars, labelled_events])
    assert result.success
    per_day = [storage.warehouse.read_partition("raw_trades", first + timedelta(days=i)).height for i in range(3)]
    conn = psycopg2.connect(pg_database)
    with conn, conn.cursor() as cur:
        cur.execute('SELECT (timestamp AT TIME ZONE \'UTC\')::date, count(*) FROM "Trade" GROUP BY 1 ORDER BY 1')
        expected = [n for _, n in cur.fetchall()]
    conn.close()
    assert per_day == expected and sum(per_day) == counts["trades"]
    events = pl.concat([storage.warehouse.read_partition("labelled_events", first + timedelta(days=i)) for i in range(3)]).unique()
    assert events.height >= counts["events"] > 0


def test_events_csv_with_class_ids(tmp_path, storage, instance):
    path = tmp_path / "events.csv"
    path.write_text("token,class_id,start_time,end_time\nA,1,2024-03-01T10:00:00Z,2024-03-01T10:05:00Z\nA,2,2024-03-01T10:05:00Z,2024-03-01T10:07:00Z\n")
    trades = tmp_path / "t.csv"
    trades.write_text("token,ts,price,amount,side\nA,2024-03-01T09:00:00Z,1.0,1.0,sell\n")
    source = FilesSource(pattern=str(trades), events=str(path))
    assert materialize_range(D1, D1, resources=_resources(storage, source), instance=instance, assets=[labelled_events]).success
    assert storage.warehouse.read_partition("labelled_events", D1)["type"].to_list() == ["pump", "dump"]
    path.write_text("token,class_id,start_time,end_time\nA,7,2024-03-01T10:00:00Z,2024-03-01T10:05:00Z\n")
    bad = materialize_range(D1, D1, resources=_resources(storage, source), instance=instance, assets=[labelled_events], raise_on_error=False)
    assert not bad.success and f"{path}:2: type must be pump or dump" in _failure_text(bad)


def test_without_creation_times_token_age_is_null_and_a_spec_that_needs_it_says_so(tmp_path, storage, instance):
    """Trade files never say when a token was created: token age stays unknown instead of being
    guessed from the first trade in the files, and the young-token detector declines to train."""
    from dataclasses import replace

    from alevor_assets.defs.features.assets import features
    from alevor_assets.defs.market_data.assets import tokens
    from alevor_assets.defs.modeling.assets import build_spec_assets
    from alevor_assets.lib.specs import model_specs
    from tests.conftest import small_config

    data = tmp_path / "data"
    data.mkdir()
    cfg = replace(small_config(), launch_start=D1)
    days = [D1 + timedelta(days=i) for i in range(3)]
    for day in days:
        synthetic.trades_for_day(cfg, day).select("token", "trade_id", "ts", "price", "amount", "side").write_csv(
            data / f"trades-{day}.csv")
    events = pl.concat([synthetic.events_for_day(cfg, d) for d in days]).unique()
    events.write_csv(tmp_path / "events.csv")
    source = FilesSource(pattern=str(data / "*.csv"), events=str(tmp_path / "events.csv"))
    early = replace(next(s for s in model_specs() if s.name == "early_pump_detector_2s"), walk_forward_folds=0)
    assets = [tokens, labelled_events, raw_trades, bars, features, *build_spec_assets(early)]
    # From a week before the first trade: the features' warm-up walk needs to see that week
    # without trades before the token's series starts (README "Backfills").
    result = materialize_range(days[0] - timedelta(days=7), days[-1], resources=_resources(storage, source),
                               instance=instance, assets=assets)
    assert result.success
    assert storage.warehouse.read_partition("tokens", days[1])["created_at"].null_count() > 0
    feats = storage.warehouse.read_partition("features", days[1], {"interval": "2s"})
    assert feats.height > 0 and feats["token_age_hours"].null_count() == feats.height
    [model] = [e.materialization.metadata for e in result.get_asset_materialization_events()
               if e.asset_key.to_user_string() == "model_early_pump_detector_2s"]
    assert "needs token creation times" in model["skipped"].value and "version" not in model
    assert storage.registry.list_models().height == 0
    # The spec still serves: its fallback scores every day (nothing downstream was skipped).
    for day in days:
        served = storage.warehouse.read_partition("predictions_early_pump_detector_2s", day)
        assert served.height > 0 and served["source"].unique().to_list() == ["fallback"], day
