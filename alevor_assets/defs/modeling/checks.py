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
