"""Nothing lost, nothing half-published: the real assets under failures, held catalogs and bad input."""

import gzip
import zipfile
import os
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from alevor_assets.defs.market_data.assets import bars, raw_trades
from alevor_assets.defs.resources import FilesSource
from tests.conftest import small_settings, small_source
from tests.helpers import materialize_range, snapshot

D1, D2, D3, D4 = (date(2024, 3, 1) + timedelta(days=i) for i in range(4))
HEADER = "token,ts,price,amount,side\n"


def day_lines(day: date, n: int = 120, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed + day.toordinal())
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return [
        f"{'AB'[i % 2]},{(start + timedelta(seconds=int(s))).isoformat().replace('+00:00', 'Z')},"
        f"{100 + rng.normal():.4f},{rng.uniform(0.1, 3):.4f},{'buy' if rng.random() < 0.5 else 'sell'}"
        for i, s in enumerate(sorted(rng.uniform(0, 86_399, n)))
    ]


def write_day(folder: Path, day: date, **kw) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"trades-{day.isoformat()}.csv"
    path.write_text(HEADER + "\n".join(day_lines(day, **kw)) + "\n")
    return path


def files_resources(storage, folder: Path) -> dict:
    return {"storage": storage, "settings": small_settings(), "source": FilesSource(pattern=str(folder / "*"))}


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(e.event_specific_data.error.to_string() for e in result.all_events if e.event_type_value == "STEP_FAILURE")


def run(first, last, resources, instance, assets=(raw_trades,), config=None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        list(assets), instance=instance, resources=resources, raise_on_error=False,
        run_config={"ops": {"raw_trades": {"config": config}}} if config else None,
        tags={"dagster/asset_partition_range_start": first.isoformat(), "dagster/asset_partition_range_end": last.isoformat()},
    )


# -- one run, one commit ------------------------------------------------------------------------------


def _fail_third_move_into(root: Path, monkeypatch) -> None:
    """Make the third file or directory moved into ``root`` fail, however publishing moves them."""
    moved = []
    for name in ("replace", "rename", "link"):
        real = getattr(os, name)

        def failing(src, dst, *a, _real=real, **k):
            if str(dst).startswith(str(root)):
                moved.append(dst)
                if len(moved) == 3:
                    raise OSError(5, "injected I/O error")
            return _real(src, dst, *a, **k)

        monkeypatch.setattr(os, name, failing)
    try:
        from alevor_assets.lib import publish
    except ImportError:
        return

    def failing_exchange(a, b, _real=publish._exchange):
        raise OSError(5, "injected I/O error")

    monkeypatch.setattr(publish, "_exchange", failing_exchange)


def test_a_range_becomes_visible_whole_or_not_at_all(tmp_path, storage, instance, monkeypatch):
    folder = tmp_path / "files"
    for day in (D1, D2, D3, D4):
        write_day(folder, day)
    resources = files_resources(storage, folder)
    assert run(D1, D4, resources, instance).success
    old = snapshot(storage.warehouse.root)
    for day in (D1, D2, D3, D4):
        write_day(folder, day, seed=7)  # every day's trades change
    _fail_third_move_into(storage.warehouse.root, monkeypatch)
    result = run(D1, D4, resources, instance)
    monkeypatch.undo()
    now = snapshot(storage.warehouse.root)
    changed = {k for k in old if now.get(k) != old[k]}
    assert not result.success and "injected I/O error" in failure_text(result)
    assert changed == set(), f"half published: {sorted(changed)}"
    assert [p for p in (storage.root / "staging").rglob("*.parquet") if ".retired" not in p.parts] == []
    # Dagster's record agrees with the files: the last materialization is still the first run's.
    assert len(instance.fetch_materializations(dg.AssetKey("raw_trades"), limit=100).records) == 4


def test_a_reader_holding_the_catalog_never_fails_or_delays_a_run(tmp_path, storage, instance):
    resources = {"storage": storage, "settings": small_settings(), "source": small_source()}
    assert materialize_range(D1, D1, resources=resources, instance=instance, assets=[raw_trades]).success
    db = storage.root / "alevor.duckdb"
    reader = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, duckdb
            con = duckdb.connect({str(db)!r}, read_only=True)
            print(con.execute("select count(*) from raw_trades").fetchone()[0], flush=True)
            sys.stdin.readline()
            print(con.execute("select count(*) from raw_trades").fetchone()[0], flush=True)
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        held = int(reader.stdout.readline())
        result = materialize_range(D1, D2, resources=resources, instance=instance, assets=[raw_trades], raise_on_error=False)
        assert result.success, failure_text(result)
        reader.stdin.write("\n")
        reader.stdin.flush()
        # The reader kept its connection throughout; its views read the files, now two days.
        assert int(reader.stdout.readline()) > held
    finally:
        reader.kill()
        reader.wait()
    with storage.catalog.connect() as con:
        assert con.execute("select count(distinct date) from raw_trades").fetchone()[0] == 2


def test_a_failed_catalog_refresh_is_a_warning_and_the_publish_stands(tmp_path, storage, instance):
    (storage.root / "alevor.duckdb").mkdir(parents=True)  # a catalog that cannot be replaced
    resources = {"storage": storage, "settings": small_settings(), "source": small_source()}
    result = materialize_range(D1, D1, resources=resources, instance=instance, assets=[raw_trades], raise_on_error=False)
    assert result.success
    assert storage.warehouse.partition_path("raw_trades", D1).exists()
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == 30]
    assert any("catalog was not refreshed" in w for w in warnings)


# -- bad input fails where it enters ----------------------------------------------------------------


def two_published_days(tmp_path, storage, instance) -> tuple[Path, dict, dict[str, bytes]]:
    """Files of D1 and D2, published; returns D1's file, the resources and the warehouse's bytes."""
    folder = tmp_path / "files"
    path = write_day(folder, D1)
    write_day(folder, D2)
    resources = files_resources(storage, folder)
    assert run(D1, D2, resources, instance).success
    return path, resources, snapshot(storage.warehouse.root)


@pytest.mark.parametrize("content", [b"", HEADER.encode()], ids=["0-byte", "header-only"])
def test_an_empty_file_does_not_replace_a_day_unless_stated_empty(content, tmp_path, storage, instance):
    path, resources, before = two_published_days(tmp_path, storage, instance)
    path.write_bytes(content)
    result = run(D1, D1, resources, instance)
    assert not result.success
    text = failure_text(result)
    assert str(path) in text and "empty_days" in text
    assert snapshot(storage.warehouse.root) == before
    stated = run(D1, D1, resources, instance, config={"empty_days": [D1.isoformat()]})
    assert stated.success and storage.warehouse.read_partition("raw_trades", D1).height == 0


def test_a_vanished_day_does_not_replace_published_trades_unless_stated_empty(tmp_path, storage, instance):
    path, resources, before = two_published_days(tmp_path, storage, instance)
    path.unlink()
    result = run(D1, D1, resources, instance)
    assert not result.success and "published partition holds 120" in failure_text(result)
    assert snapshot(storage.warehouse.root) == before
    # A statement that contradicts the data is refused too.
    wrong = run(D2, D2, resources, instance, config={"empty_days": [D2.isoformat()]})
    assert not wrong.success and "stated empty" in failure_text(wrong)


def test_a_truncated_gzip_names_the_file_and_the_last_whole_line(tmp_path, storage, instance):
    folder = tmp_path / "files"
    write_day(folder, D1)
    resources = files_resources(storage, folder)
    assert run(D1, D1, resources, instance).success
    before = snapshot(storage.warehouse.root)
    data = gzip.compress((HEADER + "\n".join(day_lines(D2, 4000)) + "\n").encode())
    broken = folder / "more.csv.gz"
    broken.write_bytes(data[: len(data) // 2])
    result = run(D1, D2, resources, instance)
    assert not result.success
    text = failure_text(result)
    assert str(broken) in text and "truncated" in text and "after line" in text
    assert snapshot(storage.warehouse.root) == before


@pytest.mark.parametrize("damage", ["truncated", "corrupt member"])
def test_a_damaged_zip_names_the_file_and_changes_nothing(tmp_path, storage, instance, damage):
    folder = tmp_path / "files"
    write_day(folder, D1)
    resources = files_resources(storage, folder)
    assert run(D1, D1, resources, instance).success
    before = snapshot(storage.warehouse.root)
    broken = folder / "more.zip"
    with zipfile.ZipFile(broken, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("more.csv", HEADER + "\n".join(day_lines(D2, 4000)) + "\n")
    data = bytearray(broken.read_bytes())
    if damage == "truncated":  # the download stopped: no central directory
        data = data[: len(data) // 2]
    else:  # the directory is whole, the deflated member is not
        middle = len(data) // 3
        data[middle:middle + 64] = bytes(64)
    broken.write_bytes(bytes(data))
    result = run(D1, D2, resources, instance)
    assert not result.success
    text = failure_text(result)
    assert str(broken) in text and ("cannot open the zip file" in text or "truncated or corrupt" in text), text[-600:]
    assert snapshot(storage.warehouse.root) == before


def test_a_corrupt_published_partition_is_named(tmp_path, storage, instance):
    folder = tmp_path / "files"
    write_day(folder, D1)
    resources = files_resources(storage, folder)
    assert run(D1, D1, resources, instance).success
    path = storage.warehouse.partition_path("raw_trades", D1)
    path.write_bytes(b"PAR1" + os.urandom(64) + b"PAR1")
    result = dg.materialize(
        [raw_trades, bars], selection=[bars], instance=instance, resources=resources, raise_on_error=False,
        partition_key=D1.isoformat(),
    )
    assert not result.success
    assert str(path) in failure_text(result)


def test_a_corrupt_parquet_source_file_is_named(tmp_path, storage, instance):
    folder = tmp_path / "files"
    folder.mkdir()
    broken = folder / "trades.parquet"
    broken.write_bytes(b"PAR1" + os.urandom(200) + b"PAR1")
    result = run(D1, D1, files_resources(storage, folder), instance)
    assert not result.success and str(broken) in failure_text(result)


def test_an_overflowing_notional_fails_raw_trades_at_its_line(tmp_path, storage, instance):
    folder = tmp_path / "files"
    path = write_day(folder, D1)
    with path.open("a") as fh:
        fh.write("A,2024-03-01T12:00:00Z,1e300,1e300,buy\n")
    result = run(D1, D1, files_resources(storage, folder), instance, assets=[raw_trades, bars])
    assert not result.success
    assert f"{path}:122" in failure_text(result)
    failed = {e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"}
    assert failed == {"raw_trades"} and not storage.warehouse.root.exists()


def test_garbage_bytes_give_a_short_escaped_message(tmp_path, storage, instance):
    folder = tmp_path / "files"
    path = write_day(folder, D1)
    rng = np.random.default_rng(3)
    with path.open("ab") as fh:
        for _ in range(6):
            fh.write(rng.integers(0, 256, 1500, dtype=np.uint8).tobytes().replace(b"\n", b"") + b"\n")
    result = run(D1, D1, files_resources(storage, folder), instance)
    assert not result.success
    text = failure_text(result)
    assert f"{path}:122" in text
    assert all((c.isascii() and c.isprintable()) or c == "\n" for c in text), "raw bytes in the message"
    [failure] = [e.event_specific_data.error for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.cause.message if failure.cause else failure.message
    assert len(message) < 300 + 6 * (len(str(path)) + 120)  # five examples (and the quarantine path), each trimmed
