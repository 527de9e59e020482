"""Publishing a run's partitions of one asset in one atomic step, and cleaning up after runs that
died.

Why a directory swap: readers find partitions by path (``warehouse/bars/**/*.parquet`` in DuckDB
views and notebooks, ``partition_path`` in the assets), so the published state must stay a plain
directory tree, and a run that writes many partitions must change it in one step. A run stages
its files in its own area, ``staging/<run id>/<asset>-<id>/``, laid out like the warehouse. To
publish, it takes the asset's commit lock, completes the staged tree with hard links to every
published file it does not replace (no data is copied), and exchanges that tree with the live one
in a single ``renameat2(RENAME_EXCHANGE)``. Until that call the warehouse is exactly the old
state; after it, exactly the new one; a reader that resolves a path sees one or the other, and a
file it has open stays readable. The swapped unit is the deepest directory holding every staged
file (a one-day run swaps ``raw_trades/date=D``, a range swaps ``raw_trades``), so small runs stay
cheap. Concurrent runs of one asset commit one after the other under the lock, each on top of the
state the previous one left. The old tree is kept for ``RETIRE_SECONDS`` under
``staging/.retired/`` so a reader that is walking it finishes its listing; later runs delete it.

Where the filesystem cannot exchange (NFS, for one), two renames do the swap with an intent
record, and a later run restores the old tree if the process died between them.

A staging area belongs to the process holding ``<area>.lock`` (``lib/fslock.py``): the kernel
drops that lock when the process dies, so the next run recognizes a dead run's area and deletes it
(a killed run's ``staging/<run id>/`` does not stay behind).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import polars as pl

from alevor_assets.lib.fslock import HeldLock, acquire, hold
from alevor_assets.lib.warehouse import StagedPartition, StagedWriter, Warehouse

RETIRED = ".retired"
LOCKS = ".locks"
# How long a replaced tree stays readable for readers that were walking it.
RETIRE_SECONDS = 600
_INTENT = ".intent.json"
_ASIDE = ".aside"
_RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class PublishError(RuntimeError):
    pass


class Staging:
    """One writer's staging area for one asset: stage partitions, then :meth:`commit` them all at
    once or :meth:`discard` them. The area and its lock go away with the object."""

    def __init__(self, warehouse: Warehouse, run_id: str, asset: str):
        if not _RUN_ID.fullmatch(run_id) or not _RUN_ID.fullmatch(asset):
            raise ValueError(f"invalid run id or asset name for a staging area: {run_id!r}, {asset!r}")
        self.warehouse, self.asset = warehouse, asset
        clean_stale(warehouse.staging_root)
        name = f"{asset}-{uuid.uuid4().hex[:12]}"
        self.key = f"{run_id}/{name}"
        # Lock first, then create the area: an area without a held lock is always a dead one.
        lock = acquire(warehouse.staging_root / run_id / f"{name}.lock")
        assert lock is not None
        self._lock: HeldLock = lock
        self.root = warehouse.staging_root / run_id / name  # laid out like the warehouse root
        self.root.mkdir(parents=True, exist_ok=True)
        self._finalizer = weakref.finalize(self, _discard, self.root, lock)

    def stage(
        self, day: date, df: pl.DataFrame, keys: Mapping[str, str] | None = None, sort_by: Sequence[str] = ()
    ) -> StagedPartition:
        return self.warehouse.stage(self.key, self.asset, day, df, keys, sort_by)

    def writer(self, day: date, keys: Mapping[str, str] | None = None) -> StagedWriter:
        return self.warehouse.stage_writer(self.key, self.asset, day, keys)

    def commit(self, staged: Sequence[StagedPartition]) -> list[Path]:
        """Make every staged partition visible in one atomic step (see the module docstring)."""
        if not staged:
            return []
        rels = [p.staged.relative_to(self.root) for p in staged]
        if {r.parts[0] for r in rels} != {self.asset}:
            raise PublishError(f"staged files of {sorted({r.parts[0] for r in rels})} in the area of {self.asset}")
        unit = Path(os.path.commonpath([str(r.parent) for r in rels]))
        live, new = self.warehouse.root / unit, self.root / unit
        with hold(self.warehouse.staging_root / LOCKS / f"{self.asset}.lock", wait_seconds=600):
            if live.is_dir():
                _link_missing(live, new)
                _swap(new, live, self.root)
                _retire(new, self.warehouse.staging_root)
            else:
                live.parent.mkdir(parents=True, exist_ok=True)
                os.rename(new, live)
            fsync_dir(live.parent)
        return [p.final for p in staged]

    def discard(self) -> None:
        """Delete the area and release its lock."""
        self._finalizer()


def clean_stale(staging_root: Path, now: float | None = None) -> list[Path]:
    """Delete the staging areas of processes that died (their lock is free), areas left by older
    versions without a lock, and retired trees older than :data:`RETIRE_SECONDS`."""
    removed: list[Path] = []
    if not staging_root.is_dir():
        return removed
    for run_dir in sorted(staging_root.iterdir()):
        if run_dir.name.startswith(".") or not run_dir.is_dir():
            continue
        for entry in sorted(run_dir.iterdir()):
            if entry.name.endswith(".lock"):
                lock = acquire(entry, wait_seconds=0)
                if lock is None:
                    continue  # its owner is alive
                area = entry.with_name(entry.name[: -len(".lock")])
                _recover(area)
                shutil.rmtree(area, ignore_errors=True)
                lock.release(unlink=True)
                removed.append(area)
            elif entry.is_dir() and not entry.with_name(entry.name + ".lock").exists():
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        try:
            run_dir.rmdir()
        except OSError:
            pass
    retired = staging_root / RETIRED
    now = time.time() if now is None else now
    if retired.is_dir():
        for tree in retired.iterdir():
            stamp = tree.name.split("-", 1)[0]
            if stamp.isdigit() and now - int(stamp) / 1e9 > RETIRE_SECONDS:
                shutil.rmtree(tree, ignore_errors=True)
                removed.append(tree)
    return removed


def _discard(root: Path, lock: HeldLock) -> None:
    shutil.rmtree(root, ignore_errors=True)
    lock.release(unlink=True)
    try:
        root.parent.rmdir()
    except OSError:
        pass


def _link_missing(live: Path, new: Path) -> None:
    """Hard-link into ``new`` every file of ``live`` that ``new`` does not replace."""
    for dirpath, dirnames, filenames in os.walk(live):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(dirpath).relative_to(live)
        for name in filenames:
            if name.startswith("."):
                continue  # temporary files of interrupted writes
            target = new / rel / name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(Path(dirpath) / name, target)


def _swap(new: Path, live: Path, area: Path) -> None:
    """Exchange the trees at ``new`` and ``live`` atomically (old tree ends up at ``new``)."""
    try:
        _exchange(new, live)
        return
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise
    # Two renames, recoverable: if this process dies between them, the intent record lets the
    # next run put the old tree back (see _recover).
    aside = area / _ASIDE
    intent = area / _INTENT
    intent.write_text(json.dumps({"live": str(live), "aside": str(aside)}))
    _fsync_file(intent)
    os.rename(live, aside)
    os.rename(new, live)
    os.rename(aside, new)
    intent.unlink()


def _exchange(a: Path, b: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(a), None, str(b))


def _recover(area: Path) -> None:
    """Undo a two-rename swap that a dead process left half done: the live tree was moved aside
    and the new one not moved in."""
    intent = area / _INTENT
    if not intent.is_file():
        return
    record = json.loads(intent.read_text())
    live, aside = Path(record["live"]), Path(record["aside"])
    if aside.is_dir() and not live.exists():
        os.rename(aside, live)


def _retire(tree: Path, staging_root: Path) -> None:
    retired = staging_root / RETIRED
    retired.mkdir(parents=True, exist_ok=True)
    os.rename(tree, retired / f"{time.time_ns()}-{uuid.uuid4().hex[:8]}")


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
