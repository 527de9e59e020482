"""Write-audit-publish for partitioned assets.

An asset stages each new partition, audits it against its contract, and only when every
partition of the run passes publishes them, all in one atomic step (``lib/publish.py``); the audit
is the asset's blocking check. When a rule fails, nothing is published (earlier files stay exactly
as they were), the offending rows go to ``$ALEVOR_HOME/quarantine/<asset>/<run id>/`` for
inspection, and the failed check, which names every broken rule with counts and example rows,
stops everything downstream. The DuckDB catalog is refreshed after publishing, but it is derived
and optional: a failed refresh is a warning, never a failed run or an undone publish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import polars as pl

from alevor_assets.defs.resources import AlevorStorage
from alevor_assets.lib.contract import ContractReport, merge_reports
from alevor_assets.lib.publish import Staging
from alevor_assets.lib.schemas import DATE_COLUMN
from alevor_assets.lib.warehouse import MissingPartitionError, StagedPartition, StagedWriter

CONTRACT_CHECK = "check_contract"
BACKFILL_TAG = "dagster/backfill"


def partition_days(context: dg.AssetExecutionContext) -> list[date]:
    """The UTC days this run materializes (one, or a whole backfill range)."""
    window = context.partition_time_window
    start = window.start.astimezone(timezone.utc).date()
    end = window.end.astimezone(timezone.utc).date()
    return [date.fromordinal(d) for d in range(start.toordinal(), end.toordinal())]


def contract_check_spec(asset: str, description: str | None = None) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        CONTRACT_CHECK,
        asset=asset,
        blocking=True,
        description=description
        or f"Every new {asset} partition satisfies the data contract (pandera model and rules) "
        "before it is published; failures list each rule with counts and example rows.",
    )


@dataclass
class PartitionBatch:
    """Stages a run's partitions of one asset and publishes them together if all pass."""

    storage: AlevorStorage
    asset: str
    run_id: str
    sort_by: Sequence[str]
    staged: list[StagedPartition] = field(default_factory=list)
    writers: dict[tuple[date, tuple[tuple[str, str], ...]], StagedWriter] = field(default_factory=dict)
    reports: list[ContractReport] = field(default_factory=list)
    quarantined: list[Path] = field(default_factory=list)
    rows_by_day: dict[str, int] = field(default_factory=dict)
    stats: list[pl.DataFrame] = field(default_factory=list)
    preview: pl.DataFrame | None = None
    _schemas: dict[tuple[date, tuple[tuple[str, str], ...]], dict[str, pl.DataType]] = field(default_factory=dict)
    not_built: dict[str, str] = field(default_factory=dict)
    area: Staging = field(init=False)

    def __post_init__(self) -> None:
        self.area = Staging(self.storage.warehouse, self.run_id, self.asset)

    def days(
        self,
        context: dg.AssetExecutionContext,
        inputs: Sequence[tuple[str, Mapping[str, str] | None]],
        ready: Callable[[date], str | None] | None = None,
    ) -> list[date]:
        """The run's days for which every own-day input (asset and partition keys) is published
        and ``ready`` (if given) names nothing missing (e.g. warm-up days never materialized).

        A backfill also targets days outside its range whose look-ahead inputs changed (labels of
        the day before a backfilled range read its first hours), and concurrent backfills can target
        a day whose own inputs another one has not built yet. Such a day is not built: nothing on
        disk changes, the run logs a warning, and the materialization lists it under `not_built`
        with what it waits for (the automation sensor rebuilds it once that arrives). A run outside
        a backfill where no day can be built fails and says what to materialize first.
        """
        wh = self.storage.warehouse
        days = []
        for day in partition_days(context):
            absent = [(asset, keys) for asset, keys in inputs if not wh.partition_path(asset, day, keys).exists()]
            if absent:
                what = "; ".join(a + "".join(f", {k}={v}" for k, v in (keys or {}).items()) for a, keys in absent)
                self.not_built[day.isoformat()] = f"no published {what}"
            elif ready is not None and (reason := ready(day)):
                self.not_built[day.isoformat()] = reason
            else:
                days.append(day)
        if self.not_built and not days and BACKFILL_TAG not in context.run.tags:
            first = next(iter(self.not_built.items()))
            raise MissingPartitionError(f"{first[0]}: {first[1]}; materialize it first")
        for day, reason in self.not_built.items():
            context.log.warning(f"{self.asset} {day} not built: {reason} (nothing changed on disk)")
        return days

    def add(self, day: date, frame: pl.DataFrame, report: ContractReport) -> None:
        """Audit a day's frame and stage it when it passes."""
        if self.audit(day, frame, report):
            self.stage(day, frame)

    def audit(self, day: date, frame: pl.DataFrame, report: ContractReport) -> bool:
        """Record a day's validation; a failing frame goes to quarantine. True if it passed."""
        self.reports.append(report.on_day(day.isoformat()))
        if report.passed:
            return True
        self.quarantine(day, frame, "rows")
        return False

    def quarantine(self, day: date, frame: pl.DataFrame, name: str) -> Path:
        """Keep rows for inspection under ``quarantine/<asset>/<run id>/date=<day>/<name>.parquet``."""
        path = self.storage.quarantine / self.asset / self.run_id / f"{DATE_COLUMN}={day.isoformat()}"
        path.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(path / f"{name}.parquet")
        if path not in self.quarantined:
            self.quarantined.append(path)
        return path / f"{name}.parquet"

    def stage(self, day: date, frame: pl.DataFrame, keys: Mapping[str, str] | None = None) -> None:
        """Stage an audited partition (one file per day and path keys)."""
        self.staged.append(self.area.stage(day, frame, keys, self.sort_by))
        self._note(day, frame, keys)

    def open_partition(
        self, day: date, keys: Mapping[str, str] | None = None, schema: Mapping[str, pl.DataType] | None = None
    ) -> None:
        """Start a partition that :meth:`append` fills piece by piece (an empty one is still
        written, with ``schema``)."""
        key = (day, tuple(sorted((keys or {}).items())))
        if key not in self.writers:
            self.writers[key] = self.area.writer(day, keys)
            self._schemas[key] = dict(schema or {})
            self._note(day, pl.DataFrame(), keys)

    def append(self, day: date, frame: pl.DataFrame, keys: Mapping[str, str] | None = None) -> None:
        """Add an audited piece to a partition opened with :meth:`open_partition`; pieces arrive
        in the partition's sort order."""
        key = (day, tuple(sorted((keys or {}).items())))
        self.writers[key].write(frame)
        self._note(day, frame, keys)

    def _note(self, day: date, frame: pl.DataFrame, keys: Mapping[str, str] | None) -> None:
        label = day.isoformat() + "".join(f" {k}={v}" for k, v in (keys or {}).items())
        self.rows_by_day[label] = self.rows_by_day.get(label, 0) + frame.height
        if frame.height:
            self.stats.append(_stats(frame))
            if self.preview is None:
                self.preview = frame.drop([c for c in frame.columns if c.startswith("_") or c == DATE_COLUMN]).head(10)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.reports)

    def finish(
        self,
        context: dg.AssetExecutionContext,
        extra_metadata: Mapping[str, object] | None = None,
        extra_checks: Sequence[dg.AssetCheckResult] = (),
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        """Publish and report a materialization, or quarantine and report the failed check."""
        merged = merge_reports(self.asset, self.reports)
        warehouse = self.storage.warehouse
        for key, writer in self.writers.items():
            self.staged.append(writer.close(self._schemas[key]))
        self.writers.clear()
        if not self.passed:
            self.area.discard()
            quarantine = str(self.quarantined[0].parent) if self.quarantined else ""
            metadata = {
                "rules_failed": len(merged.failures),
                "failed_rows": merged.failed_rows,
                "failures": dg.MetadataValue.md(merged.to_markdown()),
                "failures_json": dg.MetadataValue.json(merged.to_json()),
                "quarantine": dg.MetadataValue.path(quarantine),
                "published": False,
            }
            yield dg.AssetCheckResult(
                check_name=CONTRACT_CHECK,
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
                description=merged.summary()[:2000],
                metadata=metadata,
            )
            # The failed blocking check already stops everything downstream; failing the step
            # with the full summary puts the files, lines and rules in the run's error message.
            raise dg.Failure(
                description=f"{merged.summary()}\nNothing was published; rows kept in {quarantine}",
                metadata={"rules_failed": len(merged.failures), "failed_rows": merged.failed_rows},
            )
        try:
            self.area.commit(self.staged)
        finally:
            self.area.discard()
        problem = self.storage.catalog.try_refresh()
        if problem:
            context.log.warning(f"{self.asset} is published; the DuckDB catalog was not refreshed ({problem}); the next run refreshes it")
        total = sum(self.rows_by_day.values())
        metadata: dict[str, object] = {
            "dagster/row_count": total,
            "rows_by_partition": dg.MetadataValue.json(self.rows_by_day),
            "path": dg.MetadataValue.path(str(warehouse.asset_dir(self.asset))),
            **_stats_metadata(self.stats),
            **(extra_metadata or {}),
        }
        if self.preview is not None:
            metadata["preview"] = dg.MetadataValue.md(_markdown_table(self.preview))
        if self.not_built:
            metadata["not_built"] = dg.MetadataValue.json(self.not_built)
        yield dg.MaterializeResult(
            metadata=metadata,
            check_results=[
                dg.AssetCheckResult(
                    check_name=CONTRACT_CHECK,
                    passed=True,
                    metadata={"rows_checked": merged.rows, "partitions": len(self.staged)},
                ),
                *extra_checks,
            ],
        )


def _stats(frame: pl.DataFrame) -> pl.DataFrame:
    exprs = []
    if "token" in frame.columns:
        exprs.append(pl.col("token").unique().implode().alias("tokens"))
    for col in ("ts", "start_time", "created_at"):
        if col in frame.columns:
            exprs += [pl.col(col).min().alias("first_ts"), pl.col(col).max().alias("last_ts")]
            break
    return frame.select(exprs) if exprs else pl.DataFrame()


def _stats_metadata(stats: list[pl.DataFrame]) -> dict[str, object]:
    stats = [s for s in stats if s.width]
    if not stats:
        return {}
    all_stats = pl.concat(stats, how="diagonal_relaxed")
    out: dict[str, object] = {}
    if "tokens" in all_stats.columns:
        out["tokens"] = all_stats.select(pl.col("tokens").explode().n_unique()).item()
    if "first_ts" in all_stats.columns:
        first = all_stats["first_ts"].min()
        last = all_stats["last_ts"].max()
        if isinstance(first, datetime) and isinstance(last, datetime):
            out["first_ts"] = first.isoformat()
            out["last_ts"] = last.isoformat()
    return out


def _markdown_table(df: pl.DataFrame) -> str:
    cols = df.columns[:14]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.select(cols).iter_rows():
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v).replace("|", "\\|")
