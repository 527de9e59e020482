"""File locks that processes on one machine, and on several machines sharing ``$ALEVOR_HOME``,
agree on.

``flock`` locks an open file description: a second open of the same file, in another process or
in this one, is excluded, and the kernel drops the lock when its holder dies (``kill -9``
included), so a lock never outlives a dead run. Linux maps ``flock`` on NFS to the server's
byte-range locks, so hosts sharing the folder exclude each other too.

A lock file, and its folder once empty, may be deleted by whoever cleans up after a dead holder;
:func:`acquire` therefore recreates a vanished folder, and checks, once it holds the lock, that
the path still names the file it locked, and starts over if not (otherwise two holders could each
lock a different file of the same name).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class LockTimeout(TimeoutError):
    pass


class HeldLock:
    """An exclusive lock on ``path``, held until :meth:`release` (or the process dies)."""

    def __init__(self, path: Path, fd: int):
        self.path, self._fd = path, fd

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def release(self, unlink: bool = False) -> None:
        if self._fd < 0:
            return
        try:
            if unlink:
                Path(self.path).unlink(missing_ok=True)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = -1


def acquire(path: Path, *, wait_seconds: float | None = None) -> HeldLock | None:
    """Lock ``path`` (created if missing). ``wait_seconds=None`` waits as long as it takes; ``0``
    tries once and returns ``None`` when someone else holds it; otherwise waits that long and
    raises :class:`LockTimeout`."""
    path = Path(path)
    deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
    delay = 0.01
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            # The folder is missing: never made, or made and then removed (empty) by a cleaner
            # before this open. Make it and try again.
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if deadline is not None and time.monotonic() >= deadline:
                if wait_seconds == 0:
                    return None
                raise LockTimeout(f"{path} is still locked after {wait_seconds:.0f} s") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
            continue
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return HeldLock(path, fd)
        os.close(fd)  # deleted by a cleaner between our open and our lock: take the new file


@contextmanager
def hold(path: Path, *, wait_seconds: float | None = None) -> Iterator[HeldLock]:
    """:func:`acquire` as a context manager (waits; raises :class:`LockTimeout` after
    ``wait_seconds``)."""
    lock = acquire(path, wait_seconds=wait_seconds)
    assert lock is not None
    try:
        yield lock
    finally:
        lock.release()
