"""What changed in a trade source since the last look: the plain logic behind the sensor.

A source is summarized per UTC day by a fingerprint (PostgreSQL: trade count, max id, sum of
ids and sum of row hashes; files: each file's modification time and size with the days it holds). Comparing the new
summary with the one stored in the sensor's cursor gives exactly the days to rebuild; a late
commit into an old day, even with a smaller id or an earlier timestamp, or a trade corrected in
place, changes that day's fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date
from typing import Any


def fingerprint_text(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def changed_days(previous: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Days (ISO strings) whose fingerprint is new, different, or gone, sorted."""
    days = {d for d, fp in current.items() if previous.get(d) != fp}
    days |= {d for d in previous if d not in current}
    return sorted(days)


def file_day_fingerprints(files: Mapping[str, tuple[int, int]], days_of: Mapping[str, list[date]]) -> dict[str, str]:
    """Per day, a fingerprint of every file holding trades of that day (path, mtime, size)."""
    per_day: dict[str, list[tuple[str, int, int]]] = {}
    for path, (mtime, size) in files.items():
        for day in days_of.get(path, []):
            per_day.setdefault(day.isoformat(), []).append((path, mtime, size))
    return {day: fingerprint_text(sorted(entries)) for day, entries in per_day.items()}
