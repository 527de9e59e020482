"""A model's life: train a version, validate (and maybe promote) it, tell whether it is current.

These are the plain functions behind ``model_<spec>``, ``validation_<spec>`` and ``drift_<spec>``:
each reads the warehouse and the registry and returns an outcome the asset reports. Nothing here
knows about Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import polars as pl

from alevor_assets.lib.contract import leaked_features
from alevor_assets.lib.drift import drifted_features, feature_psi, file_sha256
from alevor_assets.lib.model_report import validation_report, version_metadata
from alevor_assets.lib.modeling import (
    Evaluation,
    TrainResult,
    detection_setup,
    evaluate,
    split_rows,
    train,
    walk_forward,
)
from alevor_assets.lib.schemas import DATE_COLUMN
from alevor_assets.lib.promotion import Decision, decide, rescore_incumbent
from alevor_assets.lib.registry import ModelRegistry, ModelVersion, PromotionConflict
from alevor_assets.lib.specs import ModelSpec
from alevor_assets.lib.training import make_trainer
from alevor_assets.lib.training_set import row_features
from alevor_assets.lib.validation import InsufficientDataError, by_time, evaluate_gate
from alevor_assets.lib.warehouse import MissingPartitionError, Warehouse


PROMOTION_ATTEMPTS = 5


class TrainingDataChangedError(RuntimeError):
    """The training_set rows a version was trained on are no longer what is stored."""


class LeakageError(ValueError):
    """Features give the label away over the whole training window."""


# -- the training window ---------------------------------------------------------------------------


def training_window(wh: Warehouse, spec: ModelSpec) -> list[date]:
    """Days the spec trains on: ``window.days`` ending at ``window.end`` or at the newest
    training_set partition of the spec."""
    available = wh.available_days(spec.training_set_asset)
    if not available:
        raise MissingPartitionError(f"{spec.training_set_asset} has no partitions; materialize it first")
    end = spec.window_end or available[-1]
    start = end - timedelta(days=spec.window_days - 1)
    return [d for d in available if start <= d <= end]


def read_training_rows(wh: Warehouse, spec: ModelSpec, days: list[date]) -> tuple[pl.DataFrame, dict[str, int]]:
    """The spec's training rows of ``days`` and the row count of each day."""
    frames = {d.isoformat(): wh.read_partition(spec.training_set_asset, d) for d in days}
    counts = {k: v.height for k, v in frames.items()}
    # Days without any labelled row carry no realized_return column; align by name. One chunk
    # per column: the splits and folds filter these rows many times, and Polars would copy a
    # many-chunk frame into one chunk again at each eager step.
    return pl.concat(list(frames.values()), how="diagonal_relaxed", rechunk=True), counts


def read_events(wh: Warehouse, days: list[date]) -> pl.DataFrame | None:
    """The labelled events overlapping ``days`` (and the day before and after them: an alert
    near midnight may belong to the neighbouring day's event), each once; ``None`` when no
    labelled_events partition exists for them."""
    if not days:
        return None
    wanted = sorted({d + timedelta(days=k) for d in days for k in (-1, 0, 1)})
    files = wh.partition_files("labelled_events", wanted)
    if not files:
        return None
    frames = [pl.read_parquet(f).drop(DATE_COLUMN, strict=False) for f in files]
    return pl.concat(frames, how="diagonal_relaxed").unique().sort("token", "start_time")


def partition_hashes(wh: Warehouse, spec: ModelSpec, days: list[date]) -> dict[str, str | None]:
    """sha256 of each training_set file: partitions are written byte-for-byte reproducibly, so a
    different hash means different rows."""
    return {d.isoformat(): file_sha256(wh.partition_path(spec.training_set_asset, d)) for d in days}


# -- training ----------------------------------------------------------------------------------------


def knows_token_ages(wh: Warehouse, days: list[date]) -> bool:
    """Whether any token of these days has a known creation time."""
    files = wh.partition_files("tokens", days)
    return bool(files) and pl.scan_parquet(files).select(pl.col("created_at").is_not_null().any()).collect().item()


@dataclass
class Trained:
    """What ``model_<spec>`` did: a new registry version, or why it trained nothing yet."""

    rows: int
    partitions: dict[str, int]
    version: ModelVersion | None = None
    result: TrainResult | None = None
    skipped: str | None = None


def train_version(spec: ModelSpec, wh: Warehouse, registry: ModelRegistry) -> Trained:
    """Train the spec on its window and register the model as a new candidate version. Too
    little data yet (an empty fold, a single class) is not an error: the outcome says why."""
    days = training_window(wh, spec)
    rows, counts = read_training_rows(wh, spec, days)
    if spec.needs_token_age and not knows_token_ages(wh, days):
        return Trained(rows.height, counts, skipped=(
            f"{spec.name} needs token creation times (tokens.created_at), and the source gives none for "
            f"{days[0]}..{days[-1]}: trade files never carry them; for PostgreSQL map the Token table's creation "
            "column as postgres.token_columns.created_at in pipeline.yaml"
        ))
    # Each day was checked on its own; a leak too faint for a small day shows over the window.
    leaks = leaked_features(rows, row_features(rows))
    if leaks:
        raise LeakageError(
            f"{spec.training_set_asset} {days[0]}..{days[-1]}: feature(s) {', '.join(sorted(leaks))} give the label "
            f"away over the training window (equal to it, or |correlation| >= 0.999: {leaks}); a feature computed "
            f"from the future looks like this. Fix the feature, or exclude it in {spec.path}."
        )
    trainer = make_trainer(spec.trainer.name, spec.trainer.params)
    try:
        result = train(spec, rows, trainer, read_events(wh, days))
    except InsufficientDataError as exc:
        return Trained(rows.height, counts, skipped=str(exc))
    metadata = version_metadata(spec, result, counts, partition_hashes(wh, spec, days))
    return Trained(rows.height, counts, registry.save(spec.name, trainer, metadata), result)


# -- validation and promotion --------------------------------------------------------------------------


@dataclass
class Validated:
    """What ``validation_<spec>`` found for one version, and what it decided."""

    version: int
    metrics: dict[str, Any]
    walk_forward: dict[str, Any]
    decision: Decision
    gate_checks: list[dict[str, Any]]
    report_markdown: str
    report_path: Any
    artifact_sha256: str = ""


def validate_version(spec: ModelSpec, wh: Warehouse, registry: ModelRegistry, version: int) -> Validated:
    """Score ``version`` on its held-out test fold and in walk-forward folds, gate it, compare it
    with the promoted version on the same rows, record the decision and write the report."""
    trainer, mv = registry.load(spec.name, version)
    meta = mv.metadata
    days = [date.fromisoformat(d) for d in meta["training"]["partitions"]]
    rows, counts = read_training_rows(wh, spec, days)
    if counts != meta["training"]["rows_by_partition"]:
        raise TrainingDataChangedError(
            f"{spec.training_set_asset} changed since {spec.name} v{version} was trained "
            f"(rows {counts} vs {meta['training']['rows_by_partition']}); rematerialize model_{spec.name}"
        )
    rows = by_time(rows)  # sorted once for the split and the walk-forward folds
    test = split_rows(spec, rows).test.rows
    classes = (meta.get("fit") or {}).get("classes")
    setup = detection_setup(spec, read_events(wh, days), rows)
    evaluation: Evaluation = evaluate(spec, trainer, test, meta["features"], meta["threshold"], classes, setup)
    metrics = evaluation.metrics
    walk = walk_forward(spec, rows, meta["features"], lambda: make_trainer(spec.trainer.name, spec.trainer.params), setup)
    if walk.get("mean") is not None:
        metrics[f"walk_forward_{spec.primary_metric}_mean"] = walk["mean"]
    gate = evaluate_gate(metrics, spec.gate)
    # Promotion is a compare-and-swap on the promoted version: when another run promoted one
    # after this run compared with the previous one, compare with the new one and decide again.
    for attempt in range(PROMOTION_ATTEMPTS):
        incumbent = rescore_incumbent(registry, spec, test, setup)
        decision = decide(version, gate, spec.primary_metric, metrics.get(spec.primary_metric), incumbent)
        report = validation_report(
            spec, version, evaluation, decision.text, meta.get("feature_importance", {}), test, meta["training"], walk
        )
        report_path = report.write(mv.directory)
        try:
            registry.record_validation(
                spec.name, version, metrics=metrics, primary_metric=spec.primary_metric,
                gate_passed=gate.passed, promote=decision.promote, report_path=report_path, incumbent=incumbent.version,
            )
            break
        except PromotionConflict:
            if attempt == PROMOTION_ATTEMPTS - 1:
                raise
    return Validated(version, metrics, walk, decision, gate.checks, report.markdown(inline_plots=True), report_path, mv.sha256)


# -- drift -----------------------------------------------------------------------------------------------


@dataclass
class DriftStatus:
    """Whether the newest version is still current: its training partitions unchanged, and no
    feature of newer partitions drifted beyond the spec's PSI threshold."""

    version: int | None
    threshold: float
    changed: list[str] = field(default_factory=list)
    newer: list[str] = field(default_factory=list)
    psi: dict[str, float] = field(default_factory=dict)

    @property
    def drifted(self) -> dict[str, float]:
        return drifted_features(self.psi, self.threshold)


def drift_status(spec: ModelSpec, wh: Warehouse, registry: ModelRegistry) -> DriftStatus:
    """Compare the newest version's training window with what is stored now. Without any
    version, the training data counts as changed (so the model trains)."""
    latest = registry.latest(spec.name)
    if latest is None:
        return DriftStatus(None, spec.drift_psi_threshold, changed=["no model trained yet"])
    meta = latest.metadata
    window = [date.fromisoformat(d) for d in meta["training"]["partitions"]]
    recorded = meta["training"].get("partition_sha256", {})
    now = partition_hashes(wh, spec, window)
    changed = [d for d in now if now[d] != recorded.get(d)]
    newer = [d for d in wh.available_days(spec.training_set_asset) if window and d > max(window)]
    psi: dict[str, float] = {}
    if newer:
        reference, _ = read_training_rows(wh, spec, window)
        current, _ = read_training_rows(wh, spec, newer)
        psi = feature_psi(reference, current, meta["features"])
    return DriftStatus(latest.version, spec.drift_psi_threshold, changed, [d.isoformat() for d in newer], psi)
