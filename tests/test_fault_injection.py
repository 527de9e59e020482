"""Kill -9 a run at several points: the warehouse is entirely old or entirely new for its asset,
and a rerun equals a clean build, file by file (sha256).

Each killed run is a real subprocess that materializes raw_trades for two days of a changed market
and sends itself SIGKILL at one point: after staging one partition, in the middle of publishing
(linking the partitions it keeps, and just after the exchange) and while refreshing the catalog.
"""

import hashlib
import signal
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.conftest import REPO

D1 = date(2024, 1, 1)
DAYS = [D1 + timedelta(days=i) for i in range(4)]

RUN = """
import os, signal, sys
from datetime import date
import dagster as dg
from alevor_assets.defs.market_data.assets import raw_trades
from alevor_assets.defs.resources import AlevorStorage
from alevor_assets.lib import catalog, publish
from tests.conftest import small_settings, small_source

home, seed, first, last, kill_at = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

def on_call(owner, name, n):
    real, seen = getattr(owner, name), []
    def wrapper(*args, **kwargs):
        seen.append(1)
        if len(seen) == n:
            die()
        return real(*args, **kwargs)
    setattr(owner, name, wrapper)

if kill_at == "staging":
    on_call(publish.Staging, "stage", 2)
elif kill_at == "publish_linking":
    on_call(publish.os, "link", 1)
elif kill_at == "publish_exchanged":
    publish._retire = die
elif kill_at == "catalog_refresh":
    catalog.Catalog.refresh = die
with dg.DagsterInstance.ephemeral() as instance:
    result = dg.materialize(
        [raw_trades], instance=instance,
        resources={"storage": AlevorStorage(home=home), "settings": small_settings(), "source": small_source(seed=seed)},
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )
sys.exit(0 if result.success else 1)
"""


def _run(tmp: Path, home: Path, seed: int, first: date, last: date, kill_at: str = "none") -> int:
    script = tmp / "run.py"
    script.write_text(textwrap.dedent(RUN))
    done = subprocess.run([sys.executable, str(script), str(home), str(seed), first.isoformat(), last.isoformat(), kill_at],
                          cwd=REPO, capture_output=True, text=True, timeout=600, env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert done.returncode in (0, -signal.SIGKILL), done.stderr[-3000:]
    return done.returncode


def _tree(home: Path) -> dict[str, str]:
    root = home / "warehouse" / "raw_trades"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.parquet"))}


@pytest.mark.slow
def test_a_killed_run_leaves_its_asset_entirely_old_or_new_and_a_rerun_equals_a_clean_build(tmp_path):
    clean = tmp_path / "clean"
    assert _run(tmp_path, clean, 11, DAYS[0], DAYS[3]) == 0
    old = _tree(clean)
    assert _run(tmp_path, clean, 12, DAYS[1], DAYS[2]) == 0  # the same run, never killed
    new = _tree(clean)
    assert set(old) == set(new) == {f"date={d.isoformat()}/part-0.parquet" for d in DAYS}
    assert [k for k in old if old[k] != new[k]] == [f"date={d.isoformat()}/part-0.parquet" for d in DAYS[1:3]]
    outcomes = {}
    for kill_at in ("staging", "publish_linking", "publish_exchanged", "catalog_refresh"):
        home = tmp_path / kill_at
        assert _run(tmp_path, home, 11, DAYS[0], DAYS[3]) == 0
        assert _run(tmp_path, home, 12, DAYS[1], DAYS[2], kill_at) == -signal.SIGKILL
        after = _tree(home)
        assert after in (old, new), f"{kill_at}: neither the old nor the new state"
        outcomes[kill_at] = "old" if after == old else "new"
        assert _run(tmp_path, home, 12, DAYS[1], DAYS[2]) == 0  # the retry
        assert _tree(home) == new
        # The retry cleaned what the killed run left: no staging area, no half-built catalog.
        staged = [p for p in (home / "staging").rglob("*.parquet") if ".retired" not in p.parts]
        assert staged == [] and not list(home.glob("alevor.duckdb.*.tmp*"))
    assert outcomes == {"staging": "old", "publish_linking": "old", "publish_exchanged": "new", "catalog_refresh": "new"}
