"""``python -m bench._daemon SECONDS run -w workspace.yaml``: Dagster's own ``dagster-daemon``, with
its backfill loop ticking every SECONDS instead of Dagster's fixed 30 (for tests only).

An asset backfill advances one level of the graph per tick (raw trades, then bars and features,
then the model), so the end-to-end tests that run one spent most of their time waiting for the
next tick. Dagster has no setting for that interval (``DEFAULT_DAEMON_INTERVAL_SECONDS``, read
when each loop starts), so this sets the module constant before the daemon starts its threads;
everything else is the stock daemon. Users run ``dagster-daemon`` itself (``make daemon``).
"""

from __future__ import annotations

import sys

import dagster._daemon.controller as controller
from dagster._daemon.cli import main

if __name__ == "__main__":
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = int(sys.argv.pop(1))
    sys.argv[0] = "dagster-daemon"
    sys.exit(main())
