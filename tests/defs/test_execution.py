"""The executor choice (ALEVOR_EXECUTOR), backfill.days_per_run, and the backfill's two phases."""

from __future__ import annotations

import dagster as dg
import pytest

from alevor_assets.cli.scaleout import phases
from alevor_assets.defs.execution import DEFAULT_BROKER, celery_config, run_executor
from alevor_assets.defs.partitions import daily_backfill_policy
from alevor_assets.lib.config import pipeline_settings


def test_in_process_by_default_celery_on_request_anything_else_refused(monkeypatch):
    monkeypatch.delenv("ALEVOR_EXECUTOR", raising=False)
    assert run_executor() is dg.in_process_executor
    monkeypatch.setenv("ALEVOR_EXECUTOR", "celery")
    assert run_executor().name == "celery"
    monkeypatch.setenv("ALEVOR_EXECUTOR", "k8s")
    with pytest.raises(ValueError, match="ALEVOR_EXECUTOR must be one of in_process, celery"):
        run_executor()


def test_the_broker_url_goes_into_run_config_by_name_never_by_value(monkeypatch):
    monkeypatch.delenv("ALEVOR_CELERY_BROKER", raising=False)
    monkeypatch.delenv("ALEVOR_CELERY_BACKEND", raising=False)
    assert celery_config() == {"broker": DEFAULT_BROKER, "backend": "rpc://"}
    monkeypatch.setenv("ALEVOR_CELERY_BROKER", "pyamqp://alevor:s3cret@mq.internal:5672/prod")
    assert celery_config()["broker"] == {"env": "ALEVOR_CELERY_BROKER"}
    assert "s3cret" not in repr(celery_config())


@pytest.fixture
def overlay(tmp_path, monkeypatch):
    def write(text: str) -> None:
        path = tmp_path / "pipeline.yaml"
        path.write_text(text)
        monkeypatch.setenv("ALEVOR_PIPELINE", str(path))
        pipeline_settings.cache_clear()

    yield write
    pipeline_settings.cache_clear()


def test_days_per_run_cuts_backfills_into_runs_of_n_days(overlay):
    overlay("backfill: {days_per_run: null}\n")
    assert daily_backfill_policy() == dg.BackfillPolicy.single_run()
    overlay("backfill: {days_per_run: 3}\n")
    assert daily_backfill_policy() == dg.BackfillPolicy.multi_run(3)
    for bad in ("0", "-2", "1.5", "'7'", "true"):
        overlay(f"backfill: {{days_per_run: {bad}}}\n")
        with pytest.raises(ValueError, match="days_per_run must be a positive whole number"):
            daily_backfill_policy()


def test_market_data_is_backfilled_before_what_reads_its_earlier_days():
    groups = {"raw_trades": "market_data", "bars": "market_data", "features": "features", "model_x": "x"}
    assert phases(set(groups), groups) == [["bars", "raw_trades"], ["features", "model_x"]]
    assert phases({"features"}, groups) == [["features"]]
    assert phases({"bars"}, groups) == [["bars"]]


def test_the_distributed_instance_file_is_valid_dagster_config(tmp_path, monkeypatch):
    from pathlib import Path

    from dagster._core.instance.config import dagster_instance_config

    from alevor_assets.instance import InstanceStorage

    deploy = Path(__file__).resolve().parents[2] / "deploy"
    (tmp_path / "dagster.yaml").write_text((deploy / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["storage"]["custom"]["class"] == InstanceStorage.__name__
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 8
    assert config["compute_logs"]["config"]["base_dir"].startswith("/srv/alevor/")
