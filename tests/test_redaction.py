"""No password reaches any text Dagster or Alevor stores, in any form it is given.

Each case runs the shipped graph through the ``dagster`` CLI on the real PostgreSQL server (trust
auth accepts any password), once where raw_trades succeeds and labelled_events fails on a missing
events table, once where the database cannot be reached, then reads every file under
``DAGSTER_HOME`` (run storage, event log, compute logs) and ``ALEVOR_HOME`` (warehouse, catalog,
quarantine) and the CLI's own output, looking for the password.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from alevor_assets.lib.sources.pg_sample import load_sample
from tests.conftest import REPO, START, cli_env, small_config

FORMS = {
    "userinfo": lambda db, port: ({"ALEVOR_PG_URL": f"postgresql://postgres:Secret1Userinfo@127.0.0.1:{port}/{db}"}, "Secret1Userinfo"),
    "query": lambda db, port: ({"ALEVOR_PG_URL": f"postgresql://postgres@127.0.0.1:{port}/{db}?password=Secret2Query"}, "Secret2Query"),
    "key=value": lambda db, port: (
        {"ALEVOR_PG_URL": f"host=127.0.0.1 port={port} dbname={db} user=postgres password=Secret3KeyValue"}, "Secret3KeyValue"),
    "PGPASSWORD": lambda db, port: (
        {"ALEVOR_PG_URL": f"postgresql://postgres@127.0.0.1:{port}/{db}", "PGPASSWORD": "Secret4EnvVar"}, "Secret4EnvVar"),
}


def _materialize(tmp: Path, env: dict[str, str], select: str) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "alevor_assets.definitions",
           "--select", select, "--partition", START.isoformat()]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("form", sorted(FORMS))
def test_no_form_of_password_is_stored_anywhere(form, pg_database, tmp_path):
    load_sample(pg_database, small_config(), START, 1)
    db = pg_database.rsplit("/", 1)[1]
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("postgres:\n  connect_retries: 1\n")
    outputs = []
    for port, select, expect in ((5432, "raw_trades,labelled_events", "NoSuchEvents"), (5999, "raw_trades", "could not reach")):
        given, secret = FORMS[form](db, port)
        env = cli_env(tmp_path, ALEVOR_SOURCE="postgres", ALEVOR_EVENTS="table:NoSuchEvents", ALEVOR_PIPELINE=str(overlay), **given)
        done = _materialize(tmp_path, env, select)
        outputs.append(done.stdout + done.stderr)
        assert done.returncode != 0 and expect in outputs[-1], outputs[-1][-3000:]
    assert "Secret" not in "".join(outputs)
    # raw_trades of the first run was published from the database.
    assert (tmp_path / "alevor/warehouse/raw_trades").is_dir()
    stored = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "overlay.yaml"]
    assert any(p.suffix == ".db" for p in stored) and any("compute_logs" in p.parts for p in stored)
    leaks = [str(p) for p in stored if secret.encode() in p.read_bytes()]
    assert leaks == []
