"""Shared fixtures: small generated markets and a private ALEVOR_HOME per test."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from alevor_assets.defs.resources import AlevorStorage, PipelineSettings, SyntheticSource
from alevor_assets.lib.synthetic import SyntheticConfig

START = date(2024, 1, 1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The slow end-to-end tests first: run in parallel (`make test`: pytest-xdist handing out one
    # test at a time), the long ones start at once, spread over the workers, instead of trailing
    # at the end of the run.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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


class BuiltRun:
    """The events of the shared build's run (Dagster's own serialization of them), read like the
    ``ExecuteInProcessResult`` of that run."""

    def __init__(self, events: list[dg.DagsterEvent]):
        self.all_events = events

    def get_asset_materialization_events(self) -> list[dg.DagsterEvent]:
        return [e for e in self.all_events if e.is_step_materialization]


def _build_small_market(folder: Path) -> dict:
    from dagster._serdes import serialize_value

    from tests.helpers import materialize_range

    storage = AlevorStorage(home=str(folder / "alevor"))
    resources = {"storage": storage, "settings": small_settings(), "source": small_source()}
    with dg.DagsterInstance.ephemeral() as inst:
        result = materialize_range(START, START + timedelta(days=2), resources=resources, instance=inst)
        assert result.success
        return {"home": str(storage.root), "events": serialize_value(list(result.all_events))}


@pytest.fixture(scope="session")
def small_market(tmp_path_factory) -> tuple[Path, BuiltRun]:
    """The small market's three days through the whole test graph (``tests.helpers.ALL_ASSETS``),
    built once per test session: its ALEVOR_HOME (read it, or copy it with :func:`copy_home`) and
    its run's events."""
    from dagster._serdes import deserialize_value

    out = built_once(tmp_path_factory, "small_market", _build_small_market)
    return Path(out["home"]), BuiltRun(deserialize_value(out["events"]))


def copy_home(source: Path, storage: AlevorStorage) -> None:
    """``source`` (an ALEVOR_HOME) copied into ``storage``, its DuckDB catalog rebuilt over the copy
    (its views name the files they read by absolute path)."""
    shutil.copytree(source, storage.root, symlinks=True, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("alevor.duckdb*"))
    storage.catalog.refresh()


@pytest.fixture
def built(small_market, storage) -> BuiltRun:
    """The small market's three days through the whole graph (built once per session), in this
    test's own ALEVOR_HOME (``storage``)."""
    home, run = small_market
    copy_home(home, storage)
    return run


REPO = Path(__file__).resolve().parent.parent

# ALEVOR_PIPELINE overlay: the shipped graph on a smaller market, for subprocess tests that only need it to run.
SMALL_PIPELINE = REPO / "tests" / "data" / "small_pipeline.yaml"


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], dict]) -> dict:
    """``build(folder)`` run once for the whole test session, whichever test process asks first;
    returns what ``build`` returned (JSON). Under pytest-xdist the module fixtures of
    a module whose tests land on three workers would otherwise run three times; the tests that use
    this only read what was built."""
    from alevor_assets.lib.fslock import hold

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder every worker's basetemp lives in
    folder, done = root / f"shared-{name}", root / f"shared-{name}.json"
    with hold(root / f"shared-{name}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            outcome = build(folder)
            done.write_text(json.dumps(outcome))
    return json.loads(done.read_text())


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


@contextmanager
def dagster_services(
    tmp: Path, env: dict[str, str], daemon: bool = False, backfill_tick_seconds: int | None = None
) -> Iterator[str]:
    """A real dagster-webserver on 127.0.0.1 serving workspace.yaml (and, with daemon, the dagster-daemon
    that launches queued runs and backfills, its backfill loop ticking every ``backfill_tick_seconds``
    instead of Dagster's 30 when given: see ``bench/_daemon.py``); yields the webserver's base URL."""
    import subprocess
    import sys
    import time
    import urllib.request

    bin_dir = Path(sys.executable).parent
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    commands = {"webserver": [str(bin_dir / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]}
    if daemon:
        from bench._cluster import daemon_command

        commands["daemon"] = daemon_command(backfill_tick_seconds)
    # Create the instance's storage once: a webserver and a daemon starting together on an empty
    # DAGSTER_HOME would both stamp the SQLite schema (what `make instance` does for users).
    subprocess.run([str(bin_dir / "dagster"), "instance", "migrate"], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=120)
    procs = []
    try:
        for name, cmd in commands.items():
            with (tmp / f"{name}.log").open("w") as log:
                procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/server_info", timeout=2)
                break
            except OSError:
                if procs[0].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"webserver did not start; log: {(tmp / 'webserver.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    # A clone in a folder not named alevor_assets must load without Dagster's name warning.
    for name in commands:
        log = (tmp / f"{name}.log").read_text()
        assert "does not match the name 'alevor_assets'" not in log, f"{name}: code location name warning"


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    """POST a GraphQL query to a running webserver; fails on GraphQL errors."""
    import json
    import urllib.request

    req = urllib.request.Request(url + "/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = json.loads(resp.read())
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture(scope="session")
def webserver(tmp_path_factory):
    """A real dagster-webserver on 127.0.0.1 serving workspace.yaml; yields its base URL."""
    tmp = tmp_path_factory.mktemp("webserver")
    with dagster_services(tmp, cli_env(tmp)) as url:
        yield url


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
