"""The model registry: versioned artifacts on disk, their index in DuckDB, and a loader that
refuses anything it did not write.

Layout: ``$ALEVOR_HOME/models/<name>/v<N>/`` holds the artifact (a format that cannot execute
code: XGBoost UBJSON, or skops for scikit-learn), ``metadata.json`` and, once validated,
``report.md`` with its plots. The ``model_registry`` table lists every version with its status:
``candidate`` (trained, not validated yet), ``promoted`` (the one in use; at most one per name),
``standby`` (passed its gate but did not beat the promoted version), ``rejected`` (failed its gate)
or ``archived`` (promoted before).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from alevor_assets.lib.catalog import Catalog
from alevor_assets.lib.training import Trainer, make_trainer


class ArtifactIntegrityError(RuntimeError):
    """The artifact on disk is not the one the registry recorded."""


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    directory: Path
    artifact: Path
    sha256: str
    metadata: dict[str, Any]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ModelRegistry:
    def __init__(self, models_root: str | os.PathLike[str], catalog: Catalog):
        self.root = Path(models_root)
        self.catalog = catalog

    def save(self, name: str, trainer: Trainer, metadata: dict[str, Any]) -> ModelVersion:
        """Store a newly trained model as the next version, status ``candidate``."""
        staging = self.root / name / f".staging-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            artifact = trainer.save(staging)
            digest = sha256_file(artifact)
            with self.catalog.connect() as con:
                row = con.execute(
                    "SELECT coalesce(max(version), 0) FROM model_registry WHERE name = ?", [name]
                ).fetchall()[0]
                on_disk = [int(p.name[1:]) for p in (self.root / name).glob("v*") if p.name[1:].isdigit()]
                version = max([row[0] if row else 0, *on_disk]) + 1
                final = self.root / name / f"v{version}"
                meta = {
                    **metadata,
                    "name": name,
                    "version": version,
                    "artifact": artifact.name,
                    "artifact_sha256": digest,
                    "created_at": _now().isoformat(),
                }
                (staging / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
                os.replace(staging, final)
                con.execute(
                    """INSERT INTO model_registry (name, version, status, created_at, trainer, task,
                       interval, artifact_path, artifact_sha256, code_version, top_features, training)
                       VALUES (?, ?, 'candidate', ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [
                        name, version, _now(), trainer.name, trainer.task, metadata.get("interval", ""),
                        str(final / artifact.name), digest, metadata.get("code_version", ""),
                        json.dumps(metadata.get("top_features", [])),
                        json.dumps(metadata.get("training", {}), default=str),
                    ],
                )
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return ModelVersion(name, version, final, final / artifact.name, digest, meta)

    def _row(self, name: str, version: int | None) -> dict[str, Any] | None:
        with self.catalog.connect(read_only=True) as con:
            if version is None:
                cur = con.execute(
                    "SELECT * FROM model_registry WHERE name = ? AND status = 'promoted'", [name]
                )
            else:
                cur = con.execute(
                    "SELECT * FROM model_registry WHERE name = ? AND version = ?", [name, version]
                )
            cols = [d[0] for d in cur.description]
            rows = cur.fetchall()
        row = rows[0] if rows else None
        return dict(zip(cols, row)) if row else None

    def promoted(self, name: str) -> dict[str, Any] | None:
        return self._row(name, None)

    def latest(self, name: str) -> ModelVersion | None:
        """The newest version of ``name`` whatever its status (metadata only; no artifact load)."""
        with self.catalog.connect(read_only=True) as con:
            rows = con.execute("SELECT max(version) FROM model_registry WHERE name = ?", [name]).fetchall()
        version = rows[0][0] if rows else None
        if version is None:
            return None
        directory = self.root / name / f"v{version}"
        meta = json.loads((directory / "metadata.json").read_text())
        return ModelVersion(name, int(version), directory, directory / meta["artifact"], meta["artifact_sha256"], meta)

    def load(self, name: str, version: int | None = None) -> tuple[Trainer, ModelVersion]:
        """Load a version (default: the promoted one) after checking its sha256 against the
        registry; a changed, replaced or unknown artifact is refused."""
        row = self._row(name, version)
        if row is None:
            what = f"version {version}" if version is not None else "a promoted version"
            raise LookupError(f"model {name!r} has no {what} in the registry")
        artifact = Path(row["artifact_path"])
        if not artifact.is_file():
            raise ArtifactIntegrityError(f"{name} v{row['version']}: artifact {artifact} is missing")
        actual = sha256_file(artifact)
        if actual != row["artifact_sha256"]:
            raise ArtifactIntegrityError(
                f"{name} v{row['version']}: artifact {artifact} has sha256 {actual}, but the registry "
                f"recorded {row['artifact_sha256']}; refusing to load it"
            )
        meta = json.loads((artifact.parent / "metadata.json").read_text())
        trainer = make_trainer(meta["trainer"]["name"], meta["trainer"]["params"])
        if trainer.artifact_file != artifact.name:
            raise ArtifactIntegrityError(f"{artifact.name} is not a {trainer.name} artifact")
        trainer.load(artifact)
        return trainer, ModelVersion(name, int(row["version"]), artifact.parent, artifact, actual, meta)

    def record_validation(
        self,
        name: str,
        version: int,
        *,
        metrics: dict[str, Any],
        primary_metric: str,
        gate_passed: bool,
        promote: bool,
        report_path: Path,
    ) -> None:
        """Store a version's test metrics and the promotion decision in one transaction."""
        with self.catalog.connect() as con:
            con.execute("BEGIN TRANSACTION")
            if promote:
                con.execute(
                    "UPDATE model_registry SET status = 'archived' WHERE name = ? AND status = 'promoted'",
                    [name],
                )
            con.execute(
                """UPDATE model_registry SET status = ?, metrics = ?, primary_metric = ?,
                   primary_value = ?, gate_passed = ?, report_path = ?, promoted_at = ?
                   WHERE name = ? AND version = ?""",
                [
                    "promoted" if promote else "standby" if gate_passed else "rejected",
                    json.dumps(metrics, default=str),
                    primary_metric,
                    _float(metrics.get(primary_metric)),
                    gate_passed,
                    str(report_path),
                    _now() if promote else None,
                    name,
                    version,
                ],
            )
            con.execute("COMMIT")

    def list_models(self) -> pl.DataFrame:
        with self.catalog.connect(read_only=True) as con:
            return con.sql(
                """SELECT name, version, status, trainer, interval, primary_metric, primary_value,
                          gate_passed, created_at, promoted_at, top_features
                   FROM model_registry ORDER BY name, version"""
            ).pl()


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
