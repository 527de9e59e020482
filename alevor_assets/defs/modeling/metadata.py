"""What the model assets show in the UI (their lifecycle outcomes as Dagster metadata), and what
they read back from Dagster's record."""

from __future__ import annotations

from typing import Any

import dagster as dg

from alevor_assets.lib import report as rp
from alevor_assets.lib.lifecycle import DriftStatus, Trained, Validated


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def model_metadata(trained: Trained) -> dict[str, Any]:
    if trained.version is None or trained.result is None:
        return {"skipped": trained.skipped, "dagster/row_count": trained.rows, "partitions": dg.MetadataValue.json(trained.partitions)}
    version, result = trained.version, trained.result
    return {
        "version": version.version,
        "artifact": dg.MetadataValue.path(str(version.artifact)),
        "artifact_sha256": version.sha256,
        "partitions": dg.MetadataValue.json(trained.partitions),
        "dagster/row_count": trained.rows,
        "train_rows": result.split.train.height,
        "validation_rows": result.split.validation.height,
        "test_rows": result.split.test.height,
        "purged_rows": result.split.purged_rows,
        **{f"validation_{k}": v for k, v in _scalars(result.validation_metrics).items()},
    }


def validation_metadata(validated: Validated) -> dict[str, Any]:
    return {
        "version": validated.version,
        "promoted": validated.decision.promote,
        "decision": validated.decision.text,
        "report": dg.MetadataValue.md(validated.report_markdown),
        "report_path": dg.MetadataValue.path(str(validated.report_path)),
        "metrics": dg.MetadataValue.json(dict(validated.metrics)),
        "walk_forward": dg.MetadataValue.json(validated.walk_forward),
        **_scalars(validated.metrics),
    }


def drift_metadata(status: DriftStatus) -> dict[str, Any]:
    if status.version is None:
        return {"model_version": None}
    top = sorted(status.psi.items(), key=lambda kv: kv[1], reverse=True)
    return {
        "model_version": status.version,
        "training_partitions_changed": dg.MetadataValue.json(status.changed),
        "newer_partitions": dg.MetadataValue.json(status.newer),
        "max_psi": top[0][1] if top else None,
        "psi": dg.MetadataValue.md(rp.table([{"feature": k, "psi": v} for k, v in top[:25]], ["feature", "psi"]) if top else "no newer partitions to compare"),
    }


def recorded_version(context: dg.AssetExecutionContext, key: dg.AssetKey) -> int | None:
    """The ``version`` the latest materialization of ``key`` recorded (Dagster's record)."""
    event = context.instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get("version")
    return None if value is None or value.value is None else int(value.value)
