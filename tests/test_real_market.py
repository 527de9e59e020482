"""A real market as a user runs it: real Binance trades (tests/data/real_pumps: an illiquid pair
and a pair exported twice a month apart) and their announced pumps, one `dagster asset materialize
--select '*' --partition-range` over seven weeks of which 15 days have trades, with the files
source and the README's "Your own market" spec folder (the pump detector widened to the whole
period, every other spec switched off): raw trades through validation, predictions and alerts."""

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from alevor_assets.lib.features import compute_features
from alevor_assets.lib.warehouse import Warehouse
from tests.conftest import REPO, built_once, cli_env

pytestmark = pytest.mark.slow

REAL = REPO / "tests" / "data" / "real_pumps"
FIRST, LAST = date(2020, 11, 16), date(2021, 1, 5)
DAYS = [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
LAYERS = ["raw_trades", "tokens", "bars", "token_daily_stats", "features"]


def _backfill(tmp: Path) -> dict:
    specs = tmp / "my_specs"
    specs.mkdir()
    shipped = REPO / "alevor_assets" / "specs"
    # The cut's three pumps sit at 5 %, 21 % and 64 % of its 2-second rows: a test fold of the
    # last 40 % holds the third (the shipped 15 % would hold none, and the detector would only
    # say that it cannot be evaluated, as it does).
    detector = (shipped / "pump_detector_2s.yaml").read_text().replace("days: 30", "days: 500")
    detector = detector.replace("train: 0.70", "train: 0.50").replace("validation: 0.15", "validation: 0.10").replace("test: 0.15", "test: 0.40")
    assert "test: 0.40" in detector
    (specs / "pump_detector_2s.yaml").write_text(detector)
    for other in sorted(p.stem for p in shipped.glob("*.yaml") if p.stem != "pump_detector_2s"):
        (specs / f"off_{other}.yaml").write_text(f"name: {other}\nenabled: false\n")
    env = cli_env(tmp, ALEVOR_SOURCE="files", ALEVOR_FILES=str(REAL / "trades" / "*.csv.gz"),
                  ALEVOR_EVENTS=str(REAL / "pump_announcements.csv"), ALEVOR_SPECS=str(specs),
                  ALEVOR_START_DATE=FIRST.isoformat())
    exe = Path(sys.executable).parent / "dagster"
    done = subprocess.run(
        [str(exe), "asset", "materialize", "-m", "alevor_assets.definitions", "--select", "*",
         "--partition-range", f"{FIRST.isoformat()}...{LAST.isoformat()}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    return {"home": env["ALEVOR_HOME"], "returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


@pytest.fixture(scope="module")
def backfill(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    # Built once per session: the tests only read it.
    run = built_once(tmp_path_factory, "real_market", _backfill)
    return Path(run["home"]), subprocess.CompletedProcess([], run["returncode"], run["stdout"], run["stderr"])


def test_one_range_over_weeks_without_trades_leaves_only_files_readers_open(backfill):
    home, done = backfill
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wh = Warehouse(home / "warehouse")
    traded = [d for d in DAYS if wh.read_partition("raw_trades", d).height]
    assert len(traded) == 15 and len(DAYS) == 51
    lines = sum(len(pl.read_csv(p)) for p in (REAL / "trades").glob("*.csv.gz"))
    partitions = {p.relative_to(wh.root).parent.parent for p in wh.root.rglob("part-0.parquet")}
    assert {str(p) for p in partitions} >= {"raw_trades", "tokens", "token_daily_stats", "bars/interval=2s",
                                           "bars/interval=1d", "bars/interval=dollar_50000", "features/interval=2s",
                                           "features/interval=1d"}
    for part in partitions:
        files = sorted((wh.root / part).glob("date=*/part-0.parquet"))
        assert [f.parent.name for f in files] == [f"date={d.isoformat()}" for d in DAYS], part
        # Every day, with or without trades, has the columns and types of a day with trades.
        assert len({tuple(pl.read_parquet_schema(f).items()) for f in files}) == 1, part
    with duckdb.connect(str(home / "alevor.duckdb"), read_only=True) as con:
        counts = {v: con.execute(f'SELECT count(*) FROM "{v}"').fetchone()[0] for v in LAYERS}
        per_day = dict(con.execute("SELECT date, count(*) FROM features WHERE interval = '2s' GROUP BY ALL").fetchall())
    assert counts["raw_trades"] == lines and min(counts.values()) > 0
    assert sorted(per_day) == traded


def test_the_detector_is_trained_validated_and_served_and_every_view_reads(backfill):
    home, done = backfill
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = (home / "models" / "pump_detector_2s" / "v1" / "report.md").read_text()
    # The per-event table names every announced pump of the test fold, detected or not.
    detection = report.split("## Detection")[1].split("\n## ")[0]
    assert "| token | announced |" in detection and "| MDA/BTC | 2021-01-03 17:00:00 | derived |" in detection
    wh = Warehouse(home / "warehouse")
    for asset in ("labels_pump_detector_2s", "training_set_pump_detector_2s", "predictions_pump_detector_2s", "alerts"):
        assert [f.parent.name for f in sorted((wh.root / asset).glob("date=*/part-0.parquet"))] == \
            [f"date={d.isoformat()}" for d in DAYS], asset
    with duckdb.connect(str(home / "alevor.duckdb"), read_only=True) as con:
        views = [v for (v,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()]
        counts = {v: con.execute(f'SELECT count(*) FROM "{v}"').fetchone()[0] for v in views}
    assert {"raw_trades", "features", "labels_pump_detector_2s", "training_set_pump_detector_2s",
            "predictions", "alerts", "models"} <= set(counts), counts
    assert counts["predictions"] == counts["predictions_pump_detector_2s"] > 0


def test_a_partitions_features_equal_the_continuous_series_on_an_illiquid_pair(backfill):
    wh = Warehouse(backfill[0] / "warehouse")
    trades = pl.concat([wh.read_partition("raw_trades", d) for d in DAYS])
    tokens = wh.read_partition("tokens", LAST)
    intervals = [p.name.removeprefix("interval=") for p in (wh.root / "features").iterdir()]
    bars = pl.concat([wh.read_partition("bars", d, {"interval": i}) for d in DAYS for i in intervals])
    # APPC/BTC fills its La Morgia windows over several days: the buy chunks of the 19th alone
    # fill neither the 700 5-second nor the 900 15-second chunks the 20th starts with.
    appc = trades.filter((pl.col("token") == "APPC/BTC") & (pl.col("side") == "buy") & (pl.col("ts").dt.date() == date(2020, 11, 19)))
    assert appc.select(pl.col("ts").dt.epoch("s") // 5).n_unique() < 701
    assert appc.select(pl.col("ts").dt.epoch("s") // 15).n_unique() < 901
    for interval in intervals:
        continuous = compute_features(bars, interval, tokens=tokens, trades=trades)
        for day in DAYS:
            part = wh.read_partition("features", day, {"interval": interval})
            assert part.equals(continuous.filter(pl.col("ts").dt.date() == day)), (interval, day)
    day_after = wh.read_partition("features", date(2020, 11, 20), {"interval": "2s"}).filter(pl.col("token") == "APPC/BTC")
    for column in ("lm_15s_avg_volume", "lm_5s_std_rush_order", "rsi_14", "mtf_1h_rsi_14", "mtf_1m_macd_hist_pct"):
        assert day_after[column].null_count() == 0, column
    # MDA/BTC's second export starts 33 days after its first: a new series, nothing bridges the hole.
    restart = wh.read_partition("features", date(2021, 1, 1), {"interval": "1m"}).filter(pl.col("token") == "MDA/BTC")
    assert restart["gap_seconds"][0] is None and restart["return_1h"][0] is None and restart["lm_5s_avg_volume"][0] is None
