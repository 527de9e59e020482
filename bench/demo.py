"""The demo run, step by step: ``python -m bench.demo [--keep]``.

Runs what ``make demo`` runs (``python -m alevor_assets demo``: every asset for the demo range in
one run) in a fresh ALEVOR_HOME with its own Dagster instance, then reads that run's event log and
prints each step's wall time (STEP_START to STEP_SUCCESS or STEP_FAILURE), slowest first, with the
total. CPU seconds (user + system of the child processes) tell the work apart from waiting on a
busy machine's cores. "run" is the time the CLI itself reports for the run; "process" adds the interpreter start,
the imports and the code location's load. ``--keep`` leaves the home directory in place.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._measure import ROOT, table


def _instance(home: Path) -> dict[str, str]:
    env = {**os.environ, "ALEVOR_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    (home / "dagster").mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster" / "dagster.yaml")
    dagster = Path(sys.executable).parent / "dagster"
    subprocess.run([str(dagster), "instance", "migrate"], env=env, check=True, capture_output=True)
    return env


def step_times(dagster_home: Path, run_id: str) -> list[dict]:
    """Wall time of every step of the run, from its event log."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with dg.DagsterInstance.get() as instance:
        events = instance.all_logs(run_id)
    started: dict[str, float] = {}
    rows = []
    for e in events:
        if e.dagster_event is None or e.step_key is None:
            continue
        kind = e.dagster_event.event_type_value
        if kind == "STEP_START":
            started[e.step_key] = e.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and e.step_key in started:
            rows.append({"step": e.step_key, "seconds": e.timestamp - started[e.step_key],
                         "status": "ok" if kind == "STEP_SUCCESS" else "FAILED"})
    return sorted(rows, key=lambda r: -r["seconds"])


def main() -> None:
    keep = "--keep" in sys.argv
    home = Path(tempfile.mkdtemp(prefix="alevor-bench-demo-"))
    env = _instance(home)
    load = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "alevor_assets", "demo"], cwd=ROOT, env=env, capture_output=True, text=True)
    process = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"demo failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    match = re.search(r"run (\S+) succeeded in ([0-9.]+)s", done.stdout)
    assert match, done.stdout
    rows = step_times(home / "dagster", match.group(1))
    total = sum(r["seconds"] for r in rows)
    print(table(rows, ["step", "seconds", "status"]))
    print(f"\nsteps: {len(rows)}, sum of step times {total:.1f}s; run {float(match.group(2)):.1f}s; "
          f"process {process:.1f}s (CPU {cpu:.1f}s); load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(done.stdout[match.end():].strip())
    if keep:
        print(f"kept {home}")
    else:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
