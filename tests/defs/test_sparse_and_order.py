"""Days without trades and ranges built out of order, through the real assets in process."""

import logging
from datetime import date, timedelta

import dagster as dg
import duckdb
import polars as pl

from alevor_assets.defs.resources import SyntheticSource
from alevor_assets.lib.sources import TradeBatch
from tests.conftest import START, small_settings, small_source
from tests.helpers import DATA_ASSETS, materialize_range, snapshot

D1, D2, D3, D4 = (START + timedelta(days=i) for i in range(4))
LAYERS = ["raw_trades", "tokens", "bars", "features"]


class QuietDaySource(SyntheticSource):
    """The synthetic market without a single trade on one day."""

    quiet_day: str

    def read_trades(self, day: date) -> TradeBatch:
        got = super().read_trades(day)
        return TradeBatch(got.trades.clear(), got.rejected) if day.isoformat() == self.quiet_day else got


def test_a_day_without_trades_is_an_empty_partition_with_the_full_schema_in_every_asset(storage, instance):
    source = QuietDaySource(**small_source().model_dump(), quiet_day=D2.isoformat())
    resources = {"storage": storage, "settings": small_settings(), "source": source}
    assert materialize_range(D1, D3, resources=resources, instance=instance, assets=DATA_ASSETS).success
    root = storage.warehouse.root
    quiet = sorted(root.rglob(f"date={D2.isoformat()}/part-0.parquet"))
    assets = {p.relative_to(root).parts[0] for p in quiet}
    assert assets == {"raw_trades", "tokens", "labelled_events", "bars", "token_daily_stats", "features",
                      "labels_pump_detector_2s", "training_set_pump_detector_2s"}
    for path in quiet:
        busy = path.parent.parent / f"date={D1.isoformat()}" / "part-0.parquet"
        assert pl.read_parquet_schema(path) == pl.read_parquet_schema(busy), path
        if path.relative_to(root).parts[0] not in ("tokens", "labelled_events"):  # these do not depend on trades
            assert pl.read_parquet(path).height == 0, path
    # Every view over the warehouse reads, quiet day included.
    with duckdb.connect(str(storage.root / "alevor.duckdb"), read_only=True) as con:
        views = [v for (v,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()]
        counts = {v: con.execute(f'SELECT count(*) FROM "{v}" WHERE date = ?', [D2]).fetchone()[0] for v in views if v != "models"}
    assert set(counts) == assets and counts["features"] == 0
    # The day after the quiet one still reads its warm-up across it.
    assert storage.warehouse.read_partition("features", D3, {"interval": "2s"})["mtf_5m_rsi_14"].null_count() > 0


def _features_run(first, last, resources, instance, backfill=True) -> dg.ExecuteInProcessResult:
    """One run of the layers over ``first..last``, as a backfill launches it (or, with
    ``backfill=False``, as a single run launched by hand)."""
    tags = {"dagster/asset_partition_range_start": first.isoformat(), "dagster/asset_partition_range_end": last.isoformat()}
    return dg.materialize(DATA_ASSETS, instance=instance, resources=resources, selection=LAYERS, raise_on_error=False,
                          tags={**tags, **({"dagster/backfill": "test"} if backfill else {})})


def test_a_partition_does_not_depend_on_the_order_ranges_were_built(tmp_path, instance):
    from alevor_assets.defs.resources import AlevorStorage

    in_order = AlevorStorage(home=str(tmp_path / "in_order"))
    reversed_ = AlevorStorage(home=str(tmp_path / "reversed"))
    settings, source = small_settings(), small_source()
    assert _features_run(D1, D4, {"storage": in_order, "settings": settings, "source": source}, instance).success

    # The later range first: its warm-up (every earlier day: a day of these tokens holds fewer
    # than warmup_bars bars) was never materialized, so its days are not built and say why.
    # Launched by hand, the run fails naming what to materialize; in a backfill, it records them.
    resources = {"storage": reversed_, "settings": settings, "source": source}
    by_hand = _features_run(D3, D4, resources, instance, backfill=False)
    [failure] = [e for e in by_hand.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "features" and "2024-01-03: its warm-up needs bars interval=2s, 1m, 5m and raw_trades of " \
        "2024-01-01, 2024-01-02, never materialized" in failure.event_specific_data.error.to_string()
    later = _features_run(D3, D4, resources, instance)
    assert later.success
    [event] = [e for e in later.get_asset_materialization_events() if e.asset_key.to_user_string() == "features"][:1]
    not_built = event.materialization.metadata["not_built"].value
    assert set(not_built) == {D3.isoformat(), D4.isoformat()}
    for day, reason in not_built.items():
        assert "its warm-up needs bars interval=2s, 1m, 5m and raw_trades of 2024-01-01, 2024-01-02" in reason, reason
        assert f"materialize bars and raw_trades for those days, then {day} again" in reason, reason
    assert reversed_.warehouse.available_days("features", {"interval": "2s"}) == []
    warnings = [e.user_message for e in instance.all_logs(later.run_id) if e.level == logging.WARNING]
    assert any(m.startswith(f"features {D3.isoformat()} not built: its warm-up needs") for m in warnings), warnings

    # Once the earlier range exists, the later one builds exactly what the in-order build wrote.
    assert _features_run(D1, D2, resources, instance).success
    assert _features_run(D3, D4, resources, instance).success
    features = lambda storage: {k: v for k, v in snapshot(storage.warehouse.root).items() if k.startswith("features/")}  # noqa: E731
    assert features(reversed_) == features(in_order) and len(features(in_order)) == 8
