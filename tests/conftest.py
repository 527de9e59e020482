"""Shared fixtures: small generated markets and a private ALEVOR_HOME per test."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from alevor_assets.defs.resources import AlevorStorage, PipelineSettings, SyntheticSource
from alevor_assets.lib.synthetic import SyntheticConfig

START = date(2024, 1, 1)


def small_source(**overrides) -> SyntheticSource:
    params = dict(
        seed=11,
        tokens_count=6,
        trades_per_token_day=700.0,
        new_token_fraction=0.34,
        launch_window_days=2,
        pumps_per_token_day=1.5,
        launch_start=START.isoformat(),
    )
    params.update(overrides)
    return SyntheticSource(**params)


def small_settings(**overrides) -> PipelineSettings:
    params = dict(bar_intervals=["2s", "1m", "5m"], feature_intervals=["2s", "1m"], warmup_bars=1000, max_warmup_days=400)
    params.update(overrides)
    return PipelineSettings(**params)


def small_config() -> SyntheticConfig:
    return small_source().config()


@pytest.fixture
def storage(tmp_path: Path) -> AlevorStorage:
    return AlevorStorage(home=str(tmp_path / "alevor"))


@pytest.fixture
def instance() -> dg.DagsterInstance:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst
