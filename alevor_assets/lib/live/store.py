"""What the live path keeps under ``$ALEVOR_HOME/live``: its alerts, its state and the delivery log.

- ``alerts/*.parquet``: the live alerts, one file per tick that raised any, written to a temporary
  name, flushed and renamed into place (a reader sees a whole file or none); never the daily
  partitions. The catalog's ``alerts`` view reads them beside the batch alerts (``mode``).
- ``state.json``: the live day and, per interval, the end of the last bar scored; replaced
  atomically *after* the alerts of those bars are written, so a restart rescores at most the bars
  of the tick it died in, and the alerts already written (identity: spec, token, bar) are not
  written again.
- ``delivered.log``: one alert identity per line, appended once its delivery hook succeeded.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import polars as pl

from alevor_assets.lib.alerts import ALERT_SCHEMA
from alevor_assets.lib.publish import fsync_dir

LIVE_ALERT_SCHEMA: dict[str, pl.DataType] = {
    **ALERT_SCHEMA, "mode": pl.String(), "written_at": pl.Datetime("us", "UTC"),
}


def alert_ids(frame: pl.DataFrame) -> list[str]:
    """An alert's identity: its spec, token and bar."""
    return frame.select(pl.format("{}|{}|{}", "spec", "token", pl.col("ts").dt.epoch("us"))).to_series().to_list()


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class LiveStore:
    def __init__(self, home: str | os.PathLike[str]):
        self.root = Path(home) / "live"
        self.alerts_dir = self.root / "alerts"
        self.alerts_dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.root / "state.json"
        self.delivered_path = self.root / "delivered.log"

    def write_alerts(self, frame: pl.DataFrame) -> Path | None:
        """One new file holding ``frame`` (``LIVE_ALERT_SCHEMA``), or nothing when it is empty."""
        if frame.height == 0:
            return None
        first = int(frame["alerted_at"].dt.epoch("us").min())
        path = self.alerts_dir / f"alerts-{first}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = path.with_name(f".{path.name}.tmp")
        frame.select(list(LIVE_ALERT_SCHEMA)).write_parquet(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(self.alerts_dir)
        return path

    def alerts(self) -> pl.DataFrame:
        """Every live alert written, oldest first."""
        files = sorted(self.alerts_dir.glob("alerts-*.parquet"))
        if not files:
            return pl.DataFrame(schema=LIVE_ALERT_SCHEMA)
        return pl.concat([pl.read_parquet(f) for f in files]).sort("alerted_at", "token", "spec")

    def load_state(self) -> dict[str, Any] | None:
        return json.loads(self.state_path.read_text()) if self.state_path.exists() else None

    def save_state(self, state: dict[str, Any]) -> None:
        write_atomically(self.state_path, json.dumps(state, sort_keys=True).encode())

    def delivered(self) -> set[str]:
        if not self.delivered_path.exists():
            return set()
        return {line for line in self.delivered_path.read_text().splitlines() if line}

    def mark_delivered(self, alert_id: str) -> None:
        with open(self.delivered_path, "a") as fh:
            fh.write(alert_id + "\n")
            fh.flush()
            os.fsync(fh.fileno())
