"""The daily partitions every data asset shares (UTC days from ``ALEVOR_START_DATE``), and the
decorator every daily data asset is declared with."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any

import dagster as dg

from alevor_assets.lib.config import pipeline_settings

DEFAULT_START_DATE = "2024-01-01"


def start_date() -> date:
    # Partition definitions are part of the asset graph's structure, so the start date is read
    # when the code location loads rather than by a resource at run time.
    raw = dg.EnvVar("ALEVOR_START_DATE").get_value(DEFAULT_START_DATE) or DEFAULT_START_DATE
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"ALEVOR_START_DATE must be a date like 2024-01-01, got {raw!r}") from None


daily_partitions = dg.DailyPartitionsDefinition(start_date=start_date().isoformat(), timezone="UTC")
single_run = dg.BackfillPolicy.single_run()


def days_per_run() -> int | None:
    """``backfill.days_per_run`` in pipeline.yaml: unset (the default) keeps one run per range."""
    value = (pipeline_settings().get("backfill") or {}).get("days_per_run")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"backfill.days_per_run must be a positive whole number of days, got {value!r}")
    return value


def daily_backfill_policy() -> dg.BackfillPolicy:
    # Like the start date, the policy is part of the graph's structure, read when the code location
    # loads. Cut into runs of N days, a backfill's runs can go side by side on several workers.
    n = days_per_run()
    return single_run if n is None else dg.BackfillPolicy.multi_run(n)


def following_days(days: int) -> dg.TimeWindowPartitionMapping:
    """Depend on the same day and ``days`` later ones (forward-looking labels)."""
    return dg.TimeWindowPartitionMapping(end_offset=days, allow_nonexistent_upstream_partitions=True)


def daily_asset(
    *,
    group: str,
    check_specs: Sequence[dg.AssetCheckSpec],
    name: str | None = None,
    deps: Iterable[Any] | None = None,
    automation_condition: dg.AutomationCondition | None = None,
    kinds: Iterable[str] = ("polars", "parquet"),
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """A daily-partitioned data asset: one run per backfill range (the whole range in one pass), or
    runs of ``backfill.days_per_run`` days when pipeline.yaml sets it; write-audit-publish (so no output is required: the asset publishes its own files), and its
    contract checks."""
    return dg.asset(
        name=name,
        group_name=group,
        partitions_def=daily_partitions,
        backfill_policy=daily_backfill_policy(),
        check_specs=list(check_specs),
        output_required=False,
        deps=list(deps) if deps is not None else None,
        automation_condition=automation_condition,
        kinds=set(kinds),
        description=description,
        metadata=metadata,
    )
