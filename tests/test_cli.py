"""The command line a user types: a partition range backfills in one run."""

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.instance import InstanceRef

from tests.conftest import REPO, cli_env


@pytest.mark.slow
def test_partition_range_backfills_every_asset_in_one_run(tmp_path, monkeypatch, capsys):
    env = cli_env(tmp_path)
    exe = Path(sys.executable).parent / "dagster"
    done = subprocess.run(
        [str(exe), "asset", "materialize", "-m", "alevor_assets.definitions", "--select", "*",
         "--partition-range", "2024-01-01...2024-01-03"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])  # the instance storage reads it
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(env["DAGSTER_HOME"])) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1
        assert runs[0].tags["dagster/asset_partition_range_start"] == "2024-01-01"
        assert runs[0].tags["dagster/asset_partition_range_end"] == "2024-01-03"
    home = Path(env["ALEVOR_HOME"])
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        for path in ("raw_trades", "bars/interval=2s", "bars/interval=1d", "features/interval=2s", "token_daily_stats",
                     "labels_pump_detector_2s", "training_set_pump_detector_2s"):
            assert (home / "warehouse" / path / f"date={day}" / "part-0.parquet").exists(), (path, day)
    assert (home / "models/pump_detector_2s/v1/report.md").exists()
    # The direction model in its three shipped versions (XGBoost on one bar, LSTM and Transformer on
    # bar sequences): each trained, validated and reported, on the very same split.
    splits = {}
    for name, trainer, artifact in (("direction_classifier_1h", "xgboost_classifier", "model.ubj"),
                                    ("direction_lstm_1h", "lstm_classifier", "model.safetensors"),
                                    ("direction_transformer_1h", "transformer_classifier", "model.safetensors")):
        meta = json.loads((home / "models" / name / "v1" / "metadata.json").read_text())
        assert (meta["trainer"]["name"], meta["artifact"]) == (trainer, artifact)
        assert (home / "models" / name / "v1" / "report.md").exists()
        splits[name] = meta["training"]["split"]
    assert len({json.dumps(s, sort_keys=True) for s in splits.values()}) == 1, splits
    # What the demo prints after its run (the same range, the same graph): every promoted spec
    # scored every day, and the detectors' alerts, which the alerts view answers in plain SQL.
    from alevor_assets.cli.core import _print_alerts, storage_from_env
    from alevor_assets.lib.specs import model_specs

    monkeypatch.setenv("ALEVOR_HOME", env["ALEVOR_HOME"])
    storage = storage_from_env()
    promoted = [s.name for s in model_specs() if storage.registry.promoted(s.name)]
    assert "pump_detector_2s" in promoted
    for name in promoted:
        for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
            assert (home / "warehouse" / f"predictions_{name}" / f"date={day}" / "part-0.parquet").exists(), (name, day)
    with duckdb.connect(str(home / "alevor.duckdb"), read_only=True) as con:
        count = con.execute("SELECT count(*) FROM alerts WHERE spec = 'pump_detector_2s'").fetchone()[0]
        every = con.execute("SELECT count(*) FROM alerts").fetchone()[0]
    assert count > 0, "the detector raised no alert on a market with planted pumps"
    capsys.readouterr()
    _print_alerts(storage, date(2024, 1, 1), date(2024, 1, 3))
    assert f"{every} alert(s) over 2024-01-01...2024-01-03: the first ones" in capsys.readouterr().out
