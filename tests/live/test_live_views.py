"""Live alerts beside the batch ones: the DuckDB ``alerts`` view and ``alerts --since``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import polars as pl

from alevor_assets.cli import main
from alevor_assets.lib.catalog import Catalog
from alevor_assets.lib.live.store import LIVE_ALERT_SCHEMA, LiveStore


def _live_alert(at: datetime, token: str) -> pl.DataFrame:
    return pl.DataFrame([{"token": token, "interval": "2s", "ts": at - timedelta(seconds=2), "alerted_at": at,
                          "spec": "pump_detector_2s", "score": 0.97, "threshold": 0.4, "version": 1, "source": "model",
                          "reason": None, "top_features": "return_5m=0.12 (+1.5)", "mode": "live", "written_at": at}],
                        schema=LIVE_ALERT_SCHEMA)


def test_the_alerts_view_and_command_show_live_and_batch_alerts(home, monkeypatch, capsys):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    store = LiveStore(home)
    store.write_alerts(_live_alert(now - timedelta(minutes=3), "RECENT"))
    store.write_alerts(_live_alert(now - timedelta(hours=2), "EARLIER"))
    catalog = Catalog(home / "alevor.duckdb")
    assert "alerts" in catalog.refresh()
    with duckdb.connect(str(home / "alevor.duckdb"), read_only=True) as con:
        modes = dict(con.execute("SELECT mode, count(*) FROM alerts GROUP BY mode").fetchall())
        batch = con.execute("SELECT count(*) FROM read_parquet(?, hive_partitioning = true)",
                            [str(home / "warehouse" / "alerts" / "**" / "*.parquet")]).fetchone()[0]
    assert modes == {"batch": batch, "live": 2} and batch > 0
    # A file written after the refresh is in the view at once (the glob is read per query).
    store.write_alerts(_live_alert(now - timedelta(minutes=1), "NEWER"))
    with duckdb.connect(str(home / "alevor.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM alerts WHERE mode = 'live'").fetchone()[0] == 3

    monkeypatch.setenv("ALEVOR_HOME", str(home))
    assert main(["alerts", "--since", "10m"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 alert(s) since") and "RECENT" in out and "NEWER" in out and "EARLIER" not in out
    assert main(["alerts", "--start", "2024-01-03", "--end", "2024-01-03"]) == 0
    assert "batch" in capsys.readouterr().out
    assert main(["alerts", "--since", "soon"]) == 2


def test_live_alerts_are_observations_of_the_alerts_asset_in_the_dagster_instance():
    import dagster as dg

    from alevor_assets.cli.live import observe_live_alerts

    now = datetime(2024, 1, 3, 10, 0, 2, tzinfo=timezone.utc)
    alerts = pl.concat([_live_alert(now, "A"), _live_alert(now, "B")])
    with dg.DagsterInstance.ephemeral() as instance:
        observe_live_alerts(instance, alerts)
        records = instance.fetch_observations(dg.AssetKey("alerts"), limit=10).records
    assert len(records) == 1
    obs = records[0].asset_observation
    assert obs.partition == "2024-01-03" and obs.metadata["count"].value == 2 and obs.metadata["mode"].value == "live"
    assert "| pump_detector_2s | A |" in obs.metadata["alerts"].value
