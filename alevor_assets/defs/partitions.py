"""The daily partitions every data asset shares (UTC days from ``ALEVOR_START_DATE``)."""

from __future__ import annotations

import os
from datetime import date

import dagster as dg

DEFAULT_START_DATE = "2024-01-01"


def start_date() -> date:
    raw = os.environ.get("ALEVOR_START_DATE", DEFAULT_START_DATE)
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"ALEVOR_START_DATE must be a date like 2024-01-01, got {raw!r}") from None


# Partition definitions are part of the asset graph's structure, so the start date is read when
# the code location loads rather than through a resource.
daily_partitions = dg.DailyPartitionsDefinition(start_date=start_date().isoformat(), timezone="UTC")
single_run = dg.BackfillPolicy.single_run()


def following_days(days: int) -> dg.TimeWindowPartitionMapping:
    """Depend on the same day and ``days`` later ones (forward-looking labels)."""
    return dg.TimeWindowPartitionMapping(end_offset=days, allow_nonexistent_upstream_partitions=True)
