"""``make ui``: ``dagster dev`` (webserver, daemon, code servers) that stops when asked.

``dagster dev`` maps SIGTERM onto whatever SIGINT does when it starts; started from a shell where
SIGINT is ignored (a background job, ``nohup``, many CI runners and service managers) it ignores
both, and even when it does stop, its processes take many seconds to exit one after another. This
wrapper starts it in its own process group with the default signal handlers, and on SIGINT or
SIGTERM (Ctrl-C) forwards one SIGINT to the whole group, waits ``GRACE_SECONDS`` for every process
of it to exit, and kills what is left. Runs interrupted that way are marked failed by run
monitoring and retried (``dagster.yaml``).

Usage: ``python -m alevor_assets.devserver [dagster dev arguments]``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

GRACE_SECONDS = 10.0


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(0) also succeeds while only zombies are left; look for a live member.
    return not os.path.isdir("/proc") or bool(group_members(pgid))


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (zombies excluded), from ``/proc``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry))
    return found


def stop_group(proc: subprocess.Popen, grace: float = GRACE_SECONDS) -> None:
    """SIGINT to ``proc``'s process group, then SIGKILL to whatever is left after ``grace``."""
    pgid = proc.pid
    try:
        os.killpg(pgid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()
        if not _group_alive(pgid):
            return
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def main(argv: list[str]) -> int:
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    proc = subprocess.Popen([dagster, "dev", *argv], start_new_session=True, preexec_fn=_default_signals)
    stopping: list[int] = []

    def _stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)
    while proc.poll() is None and not stopping:
        time.sleep(0.2)
    if stopping:
        print("stopping the Dagster UI and daemon...", file=sys.stderr, flush=True)
        stop_group(proc)
        return 0
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
