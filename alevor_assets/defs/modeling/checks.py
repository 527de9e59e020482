"""The model gate: each validation reports whether its spec's thresholds hold on the test fold."""

from __future__ import annotations

import dagster as dg

from alevor_assets.lib.specs import ModelSpec
from alevor_assets.lib.validation import GateResult

GATE_CHECK = "check_gate"


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


def gate_check_result(gate: GateResult) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=GATE_CHECK,
        passed=gate.passed,
        severity=dg.AssetCheckSeverity.WARN,
        description="gate passed" if gate.passed else "gate failed: " + "; ".join(gate.failures()),
        metadata={"rules": dg.MetadataValue.json(gate.checks)},
    )


TRAINING_DATA_CHECK = "check_training_data_unchanged"
DRIFT_CHECK = "check_feature_drift"


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


def drift_results(changed: list, psi: dict[str, float], threshold: float, newer: list[str]) -> list[dg.AssetCheckResult]:
    drifted = {k: v for k, v in psi.items() if v > threshold}
    return [
        dg.AssetCheckResult(
            check_name=TRAINING_DATA_CHECK,
            passed=not changed,
            severity=dg.AssetCheckSeverity.WARN,
            description="unchanged" if not changed else f"changed: {', '.join(map(str, changed))[:500]}",
            metadata={"changed": dg.MetadataValue.json([str(c) for c in changed])},
        ),
        dg.AssetCheckResult(
            check_name=DRIFT_CHECK,
            passed=not drifted,
            severity=dg.AssetCheckSeverity.WARN,
            description=(f"PSI > {threshold}: " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(drifted.items()))[:500])
            if drifted else ("no newer partitions yet" if not newer else f"max PSI {max(psi.values(), default=0):.3f}"),
            metadata={"drifted_features": dg.MetadataValue.json(drifted), "newer_partitions": dg.MetadataValue.json(newer)},
        ),
    ]
