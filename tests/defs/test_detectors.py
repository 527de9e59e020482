"""Detectors through the real assets: pump lists with announced starts only, odd small data."""

from datetime import date, datetime, timedelta, timezone

import dagster as dg
import polars as pl

from alevor_assets.defs.resources import FilesSource
from tests.conftest import small_settings
from tests.helpers import ALL_ASSETS, DATA_ASSETS, PUMP_SPEC, SPEC_ASSETS, materialize_range

D1 = date(2024, 3, 1)
T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
LABELS = SPEC_ASSETS[0]


def _trade_lines() -> list[str]:
    """P and Q trade every 30 s all day at 1.0; P is pumped at 10:00 (peak 1.30 at 10:00:40) and
    dumps over 20 minutes; Q's 15:00 announcement moves nothing."""
    lines = []
    for k in range(2880):
        t = T0 + timedelta(seconds=30 * k)
        lines += [f"P,{t.isoformat()},1.0,1.0,{'buy' if k % 2 else 'sell'}", f"Q,{t.isoformat()},1.0,2.0,buy"]
    pump = [(5, 1.05), (20, 1.20), (40, 1.30), (45, 1.25), (300, 1.15), (1200, 1.05)]
    lines += [f"P,{(T0 + timedelta(hours=10, seconds=s, milliseconds=7)).isoformat()},{p},3.0,buy" for s, p in pump]
    return lines


def _source(tmp_path, extra: list[str] = ()) -> FilesSource:
    trades = tmp_path / "trades.csv"
    trades.write_text("token,ts,price,amount,side\n" + "\n".join([*_trade_lines(), *extra]) + "\n")
    events = tmp_path / "pumps.csv"
    events.write_text("token,start_time\nP,2024-03-01T10:00:00Z\nQ,2024-03-01T15:00:00Z\n")
    return FilesSource(pattern=str(trades), format="canonical", events=str(events))


def test_announced_starts_get_their_extent_from_the_trades_and_a_flat_one_stays_out_of_the_labels(tmp_path, storage, instance):
    resources = {"storage": storage, "settings": small_settings(), "source": _source(tmp_path)}
    result = materialize_range(D1, D1, resources=resources, instance=instance, assets=[*DATA_ASSETS[:4], LABELS])
    assert result.success
    events = storage.warehouse.read_partition("labelled_events", D1).sort("token")
    assert events.select("token", "extent", "start_time", "end_time").rows() == [
        ("P", "derived", T0 + timedelta(hours=10), T0 + timedelta(hours=10, seconds=40, milliseconds=7, microseconds=1)),
        ("Q", "flat", T0 + timedelta(hours=14, minutes=59), T0 + timedelta(hours=15, minutes=5)),
    ]
    [meta] = [e.materialization.metadata for e in result.get_asset_materialization_events()
              if e.asset_key.path == ["labelled_events"]]
    assert meta["events_by_extent"].value == {"given": 0, "derived": 1, "flat": 1, "no_data": 0}
    assert "| Q | 2024-03-01 15:00:00 | flat |" in meta["unmoved_events"].value
    labels = storage.warehouse.read_partition(PUMP_SPEC.labels_asset, D1)
    pumped = labels.filter(pl.col("label") == 1)
    assert pumped["token"].unique().to_list() == ["P"]
    assert pumped["ts"].to_list() == [T0 + timedelta(hours=10, seconds=s) for s in (0, 4, 20, 30, 40)]
    q = labels.filter(pl.col("token") == "Q")
    in_flat = (pl.col("ts") >= T0 + timedelta(hours=14, minutes=59)) & (pl.col("ts") < T0 + timedelta(hours=15, minutes=5))
    assert q.filter(in_flat).height == 0 and q.height > 2800  # neither pump nor negative, only there
    assert (q["label"] == 0).all()


def test_a_single_token_a_day_with_one_trade_and_too_few_events_skip_the_model_with_the_reason(tmp_path, storage, instance):
    source = _source(tmp_path)
    one_trade = "P,2024-03-02T12:00:00Z,1.0,1.0,buy"
    (tmp_path / "trades.csv").write_text("token,ts,price,amount,side\n" + "\n".join(
        [line for line in _trade_lines() if line.startswith("P,")] + [one_trade]) + "\n")
    resources = {"storage": storage, "settings": small_settings(), "source": source}
    # From a week before the first trade: the features' warm-up walk needs to see that week
    # without trades before the token's series starts (README "Backfills").
    result = materialize_range(D1 - timedelta(days=7), D1 + timedelta(days=1), resources=resources, instance=instance,
                               assets=ALL_ASSETS)
    assert result.success
    assert storage.warehouse.read_partition("raw_trades", D1 + timedelta(days=1)).height == 1
    [model] = [e.materialization.metadata for e in result.get_asset_materialization_events()
               if e.asset_key == dg.AssetKey("model_pump_detector_2s")]
    assert "the test fold" in model["skipped"].value and "holds no labelled event" in model["skipped"].value
    assert "version" not in model and storage.registry.latest("pump_detector_2s") is None
    # Nothing trained is not a skipped step: the rest of the graph still runs, on the fallback.
    days = [D1 - timedelta(days=7) + timedelta(days=i) for i in range(9)]
    for asset in ("predictions_pump_detector_2s", "alerts"):
        assert all(storage.warehouse.partition_path(asset, d).exists() for d in days), asset
    scored = storage.warehouse.read_partition("predictions_pump_detector_2s", D1)
    assert scored.height > 0 and scored["source"].unique().to_list() == ["fallback"]
