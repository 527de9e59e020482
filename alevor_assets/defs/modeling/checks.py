"""The model checks: the gate on held-out data, and whether the newest version is still current."""

from __future__ import annotations

import dagster as dg

from alevor_assets.lib.lifecycle import DriftStatus, Validated
from alevor_assets.lib.specs import ModelSpec

GATE_CHECK = "check_gate"
TRAINING_DATA_CHECK = "check_training_data_unchanged"
DRIFT_CHECK = "check_feature_drift"


def gate_check_spec(asset: str, spec: ModelSpec) -> dg.AssetCheckSpec:
    rules = ", ".join(f"{k} = {v}" for k, v in spec.gate.items()) or "no rules"
    return dg.AssetCheckSpec(
        GATE_CHECK,
        asset=asset,
        description=(
            f"The newest model version meets its spec's gate on held-out data ({rules}). A failure "
            "is a warning: the version is simply not promoted and the promoted one stays in use."
        ),
    )


def gate_check_result(validated: Validated) -> dg.AssetCheckResult:
    failures = [c["rule"] for c in validated.gate_checks if not c["passed"]]
    return dg.AssetCheckResult(
        check_name=GATE_CHECK,
        passed=validated.decision.gate_passed,
        severity=dg.AssetCheckSeverity.WARN,
        description="gate passed" if validated.decision.gate_passed else "gate failed: " + "; ".join(failures),
        metadata={"rules": dg.MetadataValue.json(validated.gate_checks)},
    )


def gate_not_evaluated(reason: str) -> dg.AssetCheckResult:
    """The gate when there was no new version to evaluate (a warning, like a failed gate)."""
    return dg.AssetCheckResult(check_name=GATE_CHECK, passed=False, severity=dg.AssetCheckSeverity.WARN,
                               description=f"not evaluated: {reason}")


def drift_check_specs(asset: str, spec: ModelSpec) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            TRAINING_DATA_CHECK, asset=asset,
            description="The training_set partitions the newest model version was trained on are "
            "unchanged (a late trade, a corrected source, or no model yet fails it and retrains).",
        ),
        dg.AssetCheckSpec(
            DRIFT_CHECK, asset=asset,
            description=f"No feature's PSI in newer partitions exceeds {spec.drift_psi_threshold} "
            "against the training window (a warning; it retrains the model).",
        ),
    ]


def drift_results(status: DriftStatus) -> list[dg.AssetCheckResult]:
    drifted, threshold = status.drifted, status.threshold
    if drifted:
        drift_text = f"PSI > {threshold}: " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(drifted.items()))[:500]
    else:
        drift_text = "no newer partitions yet" if not status.newer else f"max PSI {max(status.psi.values(), default=0):.3f}"
    return [
        dg.AssetCheckResult(
            check_name=TRAINING_DATA_CHECK,
            passed=not status.changed,
            severity=dg.AssetCheckSeverity.WARN,
            description="unchanged" if not status.changed else f"changed: {', '.join(status.changed)[:500]}",
            metadata={"changed": dg.MetadataValue.json(status.changed)},
        ),
        dg.AssetCheckResult(
            check_name=DRIFT_CHECK,
            passed=not drifted,
            severity=dg.AssetCheckSeverity.WARN,
            description=drift_text,
            metadata={"drifted_features": dg.MetadataValue.json(drifted), "newer_partitions": dg.MetadataValue.json(status.newer)},
        ),
    ]
