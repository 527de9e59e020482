"""The model registry: versions and their statuses as files, and a loader that refuses anything it
did not write.

Layout of ``$ALEVOR_HOME/models/<name>/``:

``v<N>/``
    the artifact (a format that cannot execute code: XGBoost UBJSON, or skops for scikit-learn),
    ``metadata.json`` (with the artifact's sha256) and, once validated, ``report.md`` with its
    plots. A version directory appears complete or not at all.
``decisions/<k>.json``
    the append-only log of validation decisions (k = 1, 2, ...): version, gate result, metrics,
    whether it was promoted and which promoted version it was compared with.

Statuses follow from the log: ``candidate`` (no decision yet), ``promoted`` (the version of the
last promoting decision; at most one per name), ``standby`` (passed its gate, did not beat the
promoted version), ``rejected`` (failed its gate), ``archived`` (promoted before).

Every write is safe across processes and hosts sharing the folder, with no lock and no database.
A version number is taken with ``mkdir`` (which fails if it exists: the loser takes the next
number) and filled by renaming a complete staged directory over it. A decision is appended as
entry k+1 by hard-linking a fully written file to ``decisions/<k+1>.json``, which fails if another
process appended k+1 first; the loser re-reads the log and decides again. Promotion is therefore a
compare-and-swap: a decision to promote names the promoted version it was compared with, and is
refused with :class:`PromotionConflict` when another promotion got in between, so two runs
promoting at once never both win. The DuckDB ``model_registry`` table is a copy of these files
(``lib/catalog.py``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from alevor_assets.lib.training import Trainer, make_trainer

if TYPE_CHECKING:
    from alevor_assets.lib.catalog import Catalog

log = logging.getLogger(__name__)

DECISIONS = "decisions"
UNCHECKED: Any = object()  # record_validation without a compare-and-swap on the promoted version
LIST_COLUMNS: dict[str, pl.DataType] = {
    "name": pl.Utf8, "version": pl.Int64, "status": pl.Utf8, "trainer": pl.Utf8, "interval": pl.Utf8,
    "primary_metric": pl.Utf8, "primary_value": pl.Float64, "gate_passed": pl.Boolean,
    "created_at": pl.Datetime("us", "UTC"), "promoted_at": pl.Datetime("us", "UTC"), "top_features": pl.Utf8,
}


class ArtifactIntegrityError(RuntimeError):
    """The artifact on disk is not the one the registry recorded."""


class PromotionConflict(RuntimeError):
    """Another decision promoted a version after this one was compared with the promoted one."""

    def __init__(self, name: str, version: int, expected: int | None, actual: int | None):
        self.name, self.version, self.expected, self.actual = name, version, expected, actual
        super().__init__(
            f"{name} v{version} was compared with the promoted version {expected}, but v{actual} was "
            "promoted meanwhile; compare with it and decide again"
        )


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    directory: Path
    artifact: Path
    sha256: str
    metadata: dict[str, Any]


@dataclass
class _State:
    """A name's decision log folded: the promoted version and each version's last decision."""

    promoted: int | None = None
    last: dict[int, dict[str, Any]] = field(default_factory=dict)
    promoted_at: dict[int, str] = field(default_factory=dict)
    next_seq: int = 1

    def status(self, version: int) -> str:
        if version == self.promoted:
            return "promoted"
        if version in self.promoted_at:
            return "archived"
        entry = self.last.get(version)
        return entry["status"] if entry else "candidate"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


class ModelRegistry:
    def __init__(self, models_root: str | os.PathLike[str], catalog: Catalog | None = None):
        self.root = Path(models_root)
        self.catalog = catalog

    # -- writing -----------------------------------------------------------------------------

    def save(self, name: str, trainer: Trainer, metadata: dict[str, Any]) -> ModelVersion:
        """Store a newly trained model as the next version, status ``candidate``."""
        spec_dir = self.root / name
        staging = spec_dir / f".staging-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            artifact = trainer.save(staging)
            digest = sha256_file(artifact)
            version = max(self._versions(name, complete=False), default=0) + 1
            while True:
                try:
                    os.mkdir(spec_dir / f"v{version}")  # the number is ours once this succeeds
                    break
                except FileExistsError:
                    version += 1
            meta = {
                **metadata, "name": name, "version": version, "task": trainer.task, "artifact": artifact.name,
                "artifact_sha256": digest, "created_at": _now(),
            }
            _write_synced(staging / "metadata.json", json.dumps(meta, indent=2, sort_keys=True, default=str))
            final = spec_dir / f"v{version}"
            os.rename(staging, final)  # replaces the empty directory reserved above
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._refresh_catalog()
        return ModelVersion(name, version, final, final / artifact.name, digest, meta)

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
        incumbent: int | None = UNCHECKED,
    ) -> str:
        """Append a version's test metrics and the promotion decision to the log; returns its
        status. ``incumbent`` is the promoted version the decision compared with (``None``: there
        was none): a promotion is refused with :class:`PromotionConflict` if another version was
        promoted since."""
        if self._metadata(name, version) is None:
            raise LookupError(f"model {name!r} has no version {version} in the registry")
        status = "promoted" if promote else "standby" if gate_passed else "rejected"
        while True:
            state = self._state(name)
            if promote and incumbent is not UNCHECKED and state.promoted != incumbent:
                raise PromotionConflict(name, version, incumbent, state.promoted)
            entry = {
                "seq": state.next_seq, "version": version, "status": status, "promote": promote,
                "gate_passed": gate_passed, "metrics": metrics, "primary_metric": primary_metric,
                "primary_value": _float(metrics.get(primary_metric)), "report_path": str(report_path),
                "compared_with": state.promoted if incumbent is UNCHECKED else incumbent, "decided_at": _now(),
            }
            if self._append(name, entry):
                break
        self._refresh_catalog()
        return status

    def _append(self, name: str, entry: dict[str, Any]) -> bool:
        """Create ``decisions/<seq>.json`` complete, or return False if that entry exists."""
        directory = self.root / name / DECISIONS
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".tmp-{uuid.uuid4().hex}"
        _write_synced(tmp, json.dumps(entry, sort_keys=True, default=str))
        try:
            os.link(tmp, directory / f"{entry['seq']:08d}.json")
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)

    def _refresh_catalog(self) -> None:
        if self.catalog is not None:
            problem = self.catalog.try_refresh()
            if problem:
                log.warning("the model registry changed; the DuckDB catalog was not refreshed (%s)", problem)

    # -- reading -----------------------------------------------------------------------------

    def _versions(self, name: str, complete: bool = True) -> list[int]:
        spec_dir = self.root / name
        if not spec_dir.is_dir():
            return []
        found = [int(p.name[1:]) for p in spec_dir.iterdir() if p.name[:1] == "v" and p.name[1:].isdigit()]
        if complete:
            found = [v for v in found if (spec_dir / f"v{v}" / "metadata.json").is_file()]
        return sorted(found)

    def _metadata(self, name: str, version: int) -> dict[str, Any] | None:
        path = self.root / name / f"v{version}" / "metadata.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def _state(self, name: str) -> _State:
        state = _State()
        directory = self.root / name / DECISIONS
        if not directory.is_dir():
            return state
        for path in sorted(directory.glob("*.json")):
            entry = json.loads(path.read_text())
            version = int(entry["version"])
            state.last[version] = entry
            if entry["promote"]:
                state.promoted = version
                state.promoted_at[version] = entry["decided_at"]
            state.next_seq = max(state.next_seq, int(entry["seq"]) + 1)
        return state

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def rows(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every complete version (of ``name``, or of every model) with its status and last
        decision, in the columns of the catalog's ``model_registry`` table."""
        out = []
        for model in [name] if name else self.names():
            state = self._state(model)
            for version in self._versions(model):
                meta = self._metadata(model, version) or {}
                entry = state.last.get(version, {})
                directory = self.root / model / f"v{version}"
                out.append({
                    "name": model, "version": version, "status": state.status(version),
                    "created_at": _timestamp(meta.get("created_at")),
                    "trainer": (meta.get("trainer") or {}).get("name", ""), "task": meta.get("task", ""),
                    "interval": meta.get("interval", ""), "artifact_path": str(directory / meta.get("artifact", "")),
                    "artifact_sha256": meta.get("artifact_sha256", ""), "code_version": meta.get("code_version", ""),
                    "primary_metric": entry.get("primary_metric"), "primary_value": entry.get("primary_value"),
                    "gate_passed": entry.get("gate_passed"), "metrics": entry.get("metrics"),
                    "top_features": meta.get("top_features", []), "training": meta.get("training", {}),
                    "report_path": entry.get("report_path"),
                    "promoted_at": _timestamp(state.promoted_at.get(version)),
                })
        return out

    def promoted(self, name: str) -> dict[str, Any] | None:
        state = self._state(name)
        if state.promoted is None:
            return None
        return next((r for r in self.rows(name) if r["version"] == state.promoted), None)

    def latest(self, name: str) -> ModelVersion | None:
        """The newest version of ``name`` whatever its status (metadata only; no artifact load)."""
        versions = self._versions(name)
        if not versions:
            return None
        version = versions[-1]
        directory = self.root / name / f"v{version}"
        meta = json.loads((directory / "metadata.json").read_text())
        return ModelVersion(name, version, directory, directory / meta["artifact"], meta["artifact_sha256"], meta)

    def load(self, name: str, version: int | None = None) -> tuple[Trainer, ModelVersion]:
        """Load a version (default: the promoted one) after checking its sha256 against the
        registry; a changed, replaced or unknown artifact is refused."""
        if version is None:
            version = self._state(name).promoted
        meta = self._metadata(name, version) if version is not None else None
        if meta is None:
            what = f"version {version}" if version is not None else "a promoted version"
            raise LookupError(f"model {name!r} has no {what} in the registry")
        artifact = self.root / name / f"v{version}" / meta["artifact"]
        if not artifact.is_file():
            raise ArtifactIntegrityError(f"{name} v{version}: artifact {artifact} is missing")
        actual = sha256_file(artifact)
        if actual != meta["artifact_sha256"]:
            raise ArtifactIntegrityError(
                f"{name} v{version}: artifact {artifact} has sha256 {actual}, but the registry "
                f"recorded {meta['artifact_sha256']}; refusing to load it"
            )
        trainer = make_trainer(meta["trainer"]["name"], meta["trainer"]["params"])
        if trainer.artifact_file != artifact.name:
            raise ArtifactIntegrityError(f"{artifact.name} is not a {trainer.name} artifact")
        trainer.load(artifact)
        return trainer, ModelVersion(name, version, artifact.parent, artifact, actual, meta)

    def list_models(self) -> pl.DataFrame:
        rows = [
            {**{c: r[c] for c in LIST_COLUMNS if c != "top_features"}, "top_features": json.dumps(r["top_features"])}
            for r in self.rows()
        ]
        return pl.DataFrame(rows, schema=LIST_COLUMNS)


def _timestamp(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
