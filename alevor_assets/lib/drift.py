"""Feature drift by population stability index (PSI), and changes to a model's training data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl

EPSILON = 1e-4


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float | None:
    """PSI of ``current`` against ``reference`` on the reference's quantile bins:
    sum over bins of (p_cur - p_ref) * ln(p_cur / p_ref), with empty bins floored at 1e-4.
    Below 0.1 is usually read as stable, above 0.25 as a significant shift. None when either
    side has fewer than ``bins`` finite values or the reference is constant."""
    ref = reference[np.isfinite(reference)]
    cur = current[np.isfinite(current)]
    if len(ref) < bins or len(cur) < bins:
        return None
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:
        return None
    inner = edges[1:-1]
    p_ref = np.bincount(np.searchsorted(inner, ref, side="right"), minlength=len(inner) + 1) / len(ref)
    p_cur = np.bincount(np.searchsorted(inner, cur, side="right"), minlength=len(inner) + 1) / len(cur)
    p_ref, p_cur = np.maximum(p_ref, EPSILON), np.maximum(p_cur, EPSILON)
    return float(np.sum((p_cur - p_ref) * np.log(p_cur / p_ref)))


def feature_psi(reference: pl.DataFrame, current: pl.DataFrame, features: list[str]) -> dict[str, float]:
    """PSI per feature (features where it is undefined are left out)."""
    out = {}
    for f in features:
        if f in reference.columns and f in current.columns:
            value = psi(reference[f].cast(pl.Float64).to_numpy(), current[f].cast(pl.Float64).to_numpy())
            if value is not None:
                out[f] = value
    return out


def file_sha256(path: Path) -> str | None:
    if not path.exists():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def drifted_features(psi: dict[str, float], threshold: float) -> dict[str, float]:
    """Features whose PSI exceeds ``threshold`` (strictly: a PSI equal to it is still stable)."""
    return {k: v for k, v in psi.items() if v > threshold}
