"""File locks: exclusion, and staying correct while a cleaner deletes lock files and folders."""

import os

from alevor_assets.lib import fslock
from alevor_assets.lib.fslock import acquire


def test_a_held_lock_excludes_a_second_holder_until_released(tmp_path):
    first = acquire(tmp_path / "a" / "x.lock")
    assert first is not None and first.held
    assert acquire(tmp_path / "a" / "x.lock", wait_seconds=0) is None
    first.release()
    second = acquire(tmp_path / "a" / "x.lock", wait_seconds=0)
    assert second is not None
    second.release(unlink=True)
    assert not (tmp_path / "a" / "x.lock").exists()


def test_a_folder_removed_by_a_cleaner_just_before_the_open_is_made_again(tmp_path, monkeypatch):
    # Another process's clean-up removes the empty run folder between the moment this one makes it
    # and the moment it opens its lock file in it (seen in CI as FileNotFoundError).
    folder = tmp_path / "staging" / "run1"
    folder.mkdir(parents=True)
    real_open, calls = os.open, []

    def open_after_a_cleaner(path, *args):
        if not calls:
            os.rmdir(folder)  # empty, as a cleaner finds it
        calls.append(path)
        return real_open(path, *args)

    monkeypatch.setattr(fslock.os, "open", open_after_a_cleaner)
    lock = acquire(folder / "bars.lock")
    assert lock is not None and (folder / "bars.lock").exists() and len(calls) == 2
    lock.release(unlink=True)


def test_a_lock_file_deleted_by_a_cleaner_while_waiting_is_not_shared(tmp_path):
    path = tmp_path / "x.lock"
    holder = acquire(path)
    assert holder is not None
    # The cleaner deletes the file while the holder still has it; a newcomer must lock the new file
    # and the old holder no longer names the path.
    path.unlink()
    newcomer = acquire(path, wait_seconds=0)
    assert newcomer is not None
    assert os.stat(path).st_ino == os.fstat(newcomer._fd).st_ino
    newcomer.release()
    holder.release()
