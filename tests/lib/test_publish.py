"""Publishing a run's partitions of an asset in one step, and cleaning up after dead runs."""

import errno
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from alevor_assets.lib import publish
from alevor_assets.lib.publish import RETIRE_SECONDS, Staging, clean_stale
from alevor_assets.lib.warehouse import Warehouse

DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(4)]
REPO = Path(__file__).resolve().parents[2]


def _frame(day: date, value: int) -> pl.DataFrame:
    return pl.DataFrame({"token": ["a", "b"], "ts": [1, 2], "v": [value, value + 1], "date": [day, day]})


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its sha256."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _publish(wh: Warehouse, value: int, days=DAYS, run: str = "run") -> None:
    area = Staging(wh, run, "bars")
    staged = [area.stage(d, _frame(d, value), {"interval": i}) for d in days for i in ("1m", "5m")]
    area.commit(staged)
    area.discard()


@pytest.fixture
def wh(tmp_path):
    return Warehouse(tmp_path / "warehouse")


def test_a_range_replaces_every_partition_at_once_and_keeps_the_others(wh):
    _publish(wh, 1, DAYS[:3])
    before = tree(wh.root)
    _publish(wh, 5, DAYS[1:])  # overlaps days 2-3, adds day 4
    after = tree(wh.root)
    assert len(after) == 8
    first = "bars/interval=1m/date=2024-01-01/part-0.parquet"
    assert after[first] == before[first]  # untouched partitions are the same files (hard links)
    assert wh.read_partition("bars", DAYS[1], {"interval": "5m"})["v"].to_list() == [5, 6]
    assert not list((wh.staging_root).glob("run*"))  # the area is gone


def test_a_one_day_run_swaps_only_that_day(wh):
    _publish(wh, 1)
    old_day_dir = wh.root / "bars" / "interval=1m"
    inode = old_day_dir.stat().st_ino
    area = Staging(wh, "run2", "bars")
    area.commit([area.stage(DAYS[0], _frame(DAYS[0], 9), {"interval": "1m"})])
    # The exchange happened at date=2024-01-01, so the interval directory is the same one.
    assert old_day_dir.stat().st_ino == inode
    assert wh.read_partition("bars", DAYS[0], {"interval": "1m"})["v"].to_list() == [9, 10]


@pytest.mark.parametrize("fail_at", ["link", "exchange"])
def test_a_failure_while_publishing_leaves_the_previous_state_exactly(wh, monkeypatch, fail_at):
    _publish(wh, 1)
    before = tree(wh.root)
    calls = {"n": 0}
    real_link = os.link

    def failing_link(src, dst, *a, **k):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.EIO, "injected")
        return real_link(src, dst, *a, **k)

    if fail_at == "link":
        monkeypatch.setattr(publish.os, "link", failing_link)
    else:
        monkeypatch.setattr(publish, "_exchange", lambda a, b: (_ for _ in ()).throw(OSError(errno.EIO, "injected")))
    area = Staging(wh, "run2", "bars")
    staged = [area.stage(d, _frame(d, 7), {"interval": "1m"}) for d in DAYS[:3]]
    with pytest.raises(OSError, match="injected"):
        area.commit(staged)
    area.discard()
    assert tree(wh.root) == before
    assert not (wh.staging_root / "run2").exists()


def test_without_an_exchange_two_renames_do_it_and_a_death_between_them_is_undone(wh, monkeypatch):
    _publish(wh, 1)
    before = tree(wh.root)
    monkeypatch.setattr(publish, "_exchange", lambda a, b: (_ for _ in ()).throw(OSError(errno.EINVAL, "not supported")))
    _publish(wh, 2, DAYS[:2])  # the fallback works
    assert wh.read_partition("bars", DAYS[0], {"interval": "1m"})["v"].to_list() == [2, 3]
    assert wh.read_partition("bars", DAYS[3], {"interval": "1m"})["v"].to_list() == [1, 2]
    before = tree(wh.root)
    # Die between moving the live tree aside and moving the new one in.
    real_rename, seen = os.rename, []

    def dying_rename(src, dst):
        seen.append(src)
        if len(seen) == 2:
            raise KeyboardInterrupt("killed")
        return real_rename(src, dst)

    monkeypatch.setattr(publish.os, "rename", dying_rename)
    area = Staging(wh, "run3", "bars")
    staged = [area.stage(d, _frame(d, 3), {"interval": "1m"}) for d in DAYS]
    with pytest.raises(KeyboardInterrupt):
        area.commit(staged)
    monkeypatch.setattr(publish.os, "rename", real_rename)
    assert not (wh.root / "bars" / "interval=1m").exists()  # the window the intent record covers
    area._finalizer.detach()  # the process "died": nothing ran its cleanup
    area._lock.release()
    clean_stale(wh.staging_root)
    assert tree(wh.root) == before


def _child(code: str, tmp: Path, run: str) -> subprocess.Popen:
    script = tmp / f"{run}.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.Popen([sys.executable, str(script), run], cwd=REPO, stdout=subprocess.PIPE, text=True)


def test_the_next_run_cleans_a_dead_runs_staging_but_not_a_live_ones(wh, tmp_path):
    common = f"""
        import os, signal, sys, time
        from datetime import date
        import polars as pl
        from alevor_assets.lib.publish import Staging
        from alevor_assets.lib.warehouse import Warehouse
        wh = Warehouse({str(wh.root)!r})
        area = Staging(wh, sys.argv[1], "raw_trades")
        area.stage(date(2024, 1, 1), pl.DataFrame({{"token": ["a"], "ts": [1]}}))
        print(area.root, flush=True)
    """
    common = textwrap.dedent(common)
    dead = _child(common + "os.kill(os.getpid(), signal.SIGKILL)\n", tmp_path, "deadrun")
    dead_area = Path(dead.stdout.readline().strip())
    dead.wait()
    assert dead.returncode == -signal.SIGKILL and dead_area.is_dir()
    assert clean_stale(wh.staging_root) == [dead_area] and not dead_area.exists()
    live = _child(common + "time.sleep(120)\n", tmp_path, "liverun")
    live_area = Path(live.stdout.readline().strip())
    try:
        assert clean_stale(wh.staging_root) == []
        assert live_area.is_dir()  # its owner holds the lock
    finally:
        live.kill()
        live.wait()
    clean_stale(wh.staging_root)
    assert not live_area.exists()


def test_concurrent_commits_of_one_asset_lose_nothing(wh, tmp_path):
    code = f"""
        import sys
        from datetime import date, timedelta
        import polars as pl
        from alevor_assets.lib.publish import Staging
        from alevor_assets.lib.warehouse import Warehouse
        wh = Warehouse({str(wh.root)!r})
        first = int(sys.argv[1])
        for k in range(5):
            area = Staging(wh, f"run{{first}}x{{k}}", "bars")
            day = date(2024, 1, 1) + timedelta(days=first + k)
            area.commit([area.stage(day, pl.DataFrame({{"token": ["a"], "ts": [first]}}), {{"interval": "1m"}})])
            area.discard()
    """
    script = tmp_path / "committer.py"
    script.write_text(textwrap.dedent(code))
    procs = [subprocess.Popen([sys.executable, str(script), str(first)], cwd=REPO) for first in (0, 5, 10)]
    assert [p.wait() for p in procs] == [0, 0, 0]
    assert len(wh.available_days("bars", {"interval": "1m"})) == 15


def test_replaced_trees_stay_readable_for_a_while_then_go(wh):
    _publish(wh, 1)
    _publish(wh, 2)
    retired = list((wh.staging_root / publish.RETIRED).iterdir())
    assert len(retired) == 1 and any(retired[0].rglob("*.parquet"))
    clean_stale(wh.staging_root)
    assert retired[0].exists()
    import time

    clean_stale(wh.staging_root, now=time.time() + RETIRE_SECONDS + 1)
    assert not retired[0].exists()
