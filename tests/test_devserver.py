"""`make ui` stops, with every process it started, on Ctrl-C (SIGINT to its process group) and on
SIGTERM, also when started where SIGINT is ignored (a background job, nohup, a CI runner), which
`dagster dev` alone turns into ignoring SIGTERM too."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, cli_env, free_port

pytestmark = pytest.mark.slow


def _ours(marker: str) -> list[int]:
    """Live processes whose command line or environment mentions ``marker`` (this test's folder)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            text = Path(f"/proc/{entry}/cmdline").read_bytes() + Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in text:
            found.append(int(entry))
    return found


@pytest.mark.parametrize("sig, sigint_ignored", [(signal.SIGINT, False), (signal.SIGTERM, True)], ids=["ctrl-c", "sigterm-background"])
def test_make_ui_stops_with_all_its_processes(sig, sigint_ignored, tmp_path):
    port = free_port()
    env = cli_env(tmp_path, PORT=str(port))

    def start_like_a_shell_would():
        signal.signal(signal.SIGINT, signal.SIG_IGN if sigint_ignored else signal.SIG_DFL)

    make = subprocess.Popen(["make", "ui", f"PORT={port}"], cwd=REPO, env=env, start_new_session=True,
                            preexec_fn=start_like_a_shell_would, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                assert make.poll() is None and time.monotonic() < deadline, "the UI did not start"
                time.sleep(1)
        assert len(_ours(str(tmp_path))) >= 4  # make, the wrapper, dagster dev, webserver, daemon, code servers
        os.killpg(make.pid, sig)  # what the terminal (Ctrl-C) or `kill %1` does
        deadline = time.monotonic() + 90
        while _ours(str(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _ours(str(tmp_path)) == [], "processes left running"
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
    finally:
        for pid in _ours(str(tmp_path)):
            os.kill(pid, signal.SIGKILL)
