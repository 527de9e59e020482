"""Promotion: does a validated version replace the one in use?

A version is promoted only when it passes its spec's gate *and* strictly beats the promoted
version on the spec's primary metric, both scored on the same test rows. A tie keeps the
incumbent (replacing a model with an equally good one only churns what the desk sees). When the
incumbent cannot be re-scored (its artifact fails its integrity check, its features no longer
exist), the value it recorded at its own validation stands in, and the decision says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from alevor_assets.lib.detection import DetectionSetup
from alevor_assets.lib.modeling import evaluate
from alevor_assets.lib.registry import ArtifactIntegrityError, ModelRegistry
from alevor_assets.lib.specs import ModelSpec
from alevor_assets.lib.validation import GateResult


@dataclass(frozen=True)
class Incumbent:
    """The promoted version's score on the candidate's test rows (``None``: no promoted version,
    or nothing to compare)."""

    version: int | None
    value: float | None
    note: str


@dataclass(frozen=True)
class Decision:
    promote: bool
    gate_passed: bool
    beats_incumbent: bool
    text: str


def decide(version: int, gate: GateResult, metric: str, value: float | None, incumbent: Incumbent) -> Decision:
    """Promote ``version`` iff its gate passed and ``value`` is strictly better than the
    incumbent's (any value beats no incumbent; no value never promotes)."""
    beats = value is not None and (incumbent.value is None or value > incumbent.value)
    promote = gate.passed and beats
    if promote:
        text = f"**Promoted v{version}**: gate passed and {metric} = {value} beats the incumbent ({incumbent.note})."
    elif not gate.passed:
        text = f"**Not promoted**: gate failed ({'; '.join(gate.failures())}). The promoted version stays ({incumbent.note})."
    else:
        text = f"**Not promoted**: {metric} = {value} does not beat the incumbent ({incumbent.note})."
    return Decision(promote=promote, gate_passed=gate.passed, beats_incumbent=beats, text=text)


def rescore_incumbent(
    registry: ModelRegistry, spec: ModelSpec, test_rows: pl.DataFrame, setup: DetectionSetup | None = None
) -> Incumbent:
    """The promoted version of ``spec`` scored on ``test_rows`` (the candidate's test fold; a
    detector's ``setup`` for per-event metrics)."""
    row = registry.promoted(spec.name)
    if row is None:
        return Incumbent(None, None, "no promoted version yet")
    version = int(row["version"])
    try:
        trainer, mv = registry.load(spec.name, version)
        meta = mv.metadata
        classes = (meta.get("fit") or {}).get("classes")
        value = evaluate(spec, trainer, test_rows, meta["features"], meta["threshold"], classes, setup).metrics.get(spec.primary_metric)
        return Incumbent(version, value, f"v{version} scores {value} on the same test rows")
    except (ArtifactIntegrityError, KeyError, ValueError, pl.exceptions.ColumnNotFoundError) as exc:
        recorded = row.get("primary_value")
        return Incumbent(version, recorded, f"v{version} recorded {recorded} (could not re-score: {exc})")
