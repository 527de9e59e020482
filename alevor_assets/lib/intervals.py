"""Bar intervals: parsing, validation and epoch alignment.

An interval is written as an integer and a unit (``2s``, ``15s``, ``1m``, ``5m``, ``1h``, ``1d``).
Buckets start at epoch multiples of the interval, so a ``5m`` bucket always starts at :00, :05, ...
UTC and partition boundaries (UTC midnight) are always bucket boundaries for intervals that divide
a day.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

_UNITS_US = {"s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
_PATTERN = re.compile(r"^(\d+)([smhd])$")
DAY_US = _UNITS_US["d"]
_EPOCH_DAY = date(1970, 1, 1)


def duration_us(text: str) -> int:
    """A duration such as ``90s``, ``5m``, ``4h`` or ``2d`` in microseconds."""
    match = _PATTERN.match(text.strip()) if isinstance(text, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"invalid duration {text!r}: expected a positive <integer><unit> with unit s, m, h or d "
            "(e.g. '2s', '1m', '1h')"
        )
    return int(match.group(1)) * _UNITS_US[match.group(2)]


def duration(text: str) -> timedelta:
    return timedelta(microseconds=duration_us(text))


def duration_or_zero(text: str) -> timedelta:
    """:func:`duration`, also accepting ``0`` / ``0s`` (an optional window left out)."""
    return timedelta(0) if str(text).strip() in ("0", "0s") else duration(str(text))


def interval_us(interval: str) -> int:
    """Length of bar ``interval`` in microseconds; raises ``ValueError`` for anything unsupported."""
    us = duration_us(interval)
    if us < _UNITS_US["s"] or us > DAY_US:
        raise ValueError(f"bar interval {interval!r} is outside the supported range 1s..1d")
    if DAY_US % us != 0:
        # Daily partitions must hold whole buckets; otherwise a bucket would straddle two partition
        # files and re-running one day could not reproduce its bars on its own.
        raise ValueError(f"bar interval {interval!r} must divide one day evenly")
    return us


def interval_seconds(interval: str) -> float:
    return interval_us(interval) / 1_000_000


def interval_timedelta(interval: str) -> timedelta:
    return timedelta(microseconds=interval_us(interval))


def sort_intervals(intervals: list[str]) -> list[str]:
    """Unique intervals, finest first."""
    return sorted(set(intervals), key=interval_us)


def day_start_us(day: date) -> int:
    """The first microsecond of UTC ``day`` since the epoch."""
    return (day - _EPOCH_DAY).days * DAY_US


def days_spanned(delta: timedelta) -> int:
    """Whole days a span reaches into (rounded up; 0 for no span)."""
    return -(-int(delta.total_seconds()) // 86_400) if delta > timedelta(0) else 0
