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
    params = dict(
        bar_intervals=["2s", "1m", "5m"], feature_intervals=["2s", "1m"], warmup_bars=1000, max_warmup_days=400,
        multi_timeframe=["1m", "5m"], dollar_thresholds=[20000.0],
    )
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


REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Environment for a subprocess with its own ALEVOR_HOME and Dagster instance."""
    import os
    import shutil

    home = tmp / "alevor"
    dagster_home = tmp / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALEVOR_", "DAGSTER_"))}
    env.update(ALEVOR_HOME=str(home), DAGSTER_HOME=str(dagster_home), **extra)
    return env


@pytest.fixture(scope="session")
def webserver(tmp_path_factory):
    """A real dagster-webserver on 127.0.0.1 serving workspace.yaml; yields its base URL."""
    import subprocess
    import sys
    import time
    import urllib.request

    tmp = tmp_path_factory.mktemp("webserver")
    port = free_port()
    exe = Path(sys.executable).parent / "dagster-webserver"
    log = open(tmp / "webserver.log", "w")
    proc = subprocess.Popen(
        [str(exe), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=cli_env(tmp), stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(url + "/server_info", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"webserver did not start; log: {(tmp / 'webserver.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_database():
    """A fresh database on the machine's real PostgreSQL, dropped afterwards; yields its URL."""
    import uuid

    import psycopg2

    name = f"alevor_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(PG_ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
