"""Alerts: from a detector's scores to discrete alerts, one per episode.

A score is known when its bar closes, so an alert's time is the time its score became known
(callers pass bar end times). Per token, in time order, a row raises an alert when its score is
at or above the threshold and the token's previous alert is at least ``cooldown`` earlier; rows
inside the cooldown raise nothing (the episode is already alerted). This greedy rule raises the
largest set of alerts that are ``cooldown`` apart, so fewer rows above the threshold never mean
more alerts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import numba
import numpy as np
import polars as pl

ALERT_COLUMNS = ["token", "ts", "score"]


@numba.njit(cache=True)
def _alert_mask(codes: np.ndarray, ts_us: np.ndarray, score: np.ndarray, threshold: float, cooldown_us: int) -> np.ndarray:
    out = np.zeros(len(codes), dtype=np.bool_)
    current = -1
    alerted = False
    last_alert = 0
    for i in range(len(codes)):
        if codes[i] != current:
            current = codes[i]
            alerted = False
        if score[i] >= threshold and (not alerted or ts_us[i] - last_alert >= cooldown_us):
            out[i] = True
            alerted = True
            last_alert = ts_us[i]
    return out


def alert_mask(codes: np.ndarray, ts_us: np.ndarray, score: np.ndarray, threshold: float, cooldown_us: int) -> np.ndarray:
    """Which rows raise an alert. Rows must be sorted by (token, ts); ``codes`` are integer token
    codes (>= 0, changing exactly where the token does), ``ts_us`` the times the scores became
    known (µs). NaN scores never alert."""
    if cooldown_us < 0:
        raise ValueError(f"cooldown must be >= 0, got {cooldown_us} µs")
    return _alert_mask(
        np.ascontiguousarray(codes, dtype=np.int64), np.ascontiguousarray(ts_us, dtype=np.int64),
        np.ascontiguousarray(score, dtype=np.float64), float(threshold), int(cooldown_us),
    )


def raise_alerts(scores: pl.DataFrame, threshold: float, cooldown: timedelta) -> pl.DataFrame:
    """The alerts among ``scores`` (``token``, ``ts`` the time each score became known, ``score``;
    any order): ``token, ts, score`` of each alert, sorted by token and time."""
    missing = [c for c in ALERT_COLUMNS if c not in scores.columns]
    if missing:
        raise ValueError(f"scores need columns {ALERT_COLUMNS}; missing {missing}")
    rows = scores.select(ALERT_COLUMNS).sort("token", "ts", maintain_order=True)
    if rows.height == 0:
        return rows
    codes = rows["token"].rle_id().to_numpy()  # sorted by token: one code per token
    mask = alert_mask(codes, rows["ts"].dt.epoch("us").to_numpy(), rows["score"].cast(pl.Float64).to_numpy(),
                      threshold, int(cooldown / timedelta(microseconds=1)))
    return rows.filter(pl.Series(mask))


# -- the daily alerts of the detectors' predictions -------------------------------------------------

ALERT_SCHEMA: dict[str, pl.DataType] = {
    "token": pl.String(), "interval": pl.String(), "ts": pl.Datetime("us", "UTC"), "alerted_at": pl.Datetime("us", "UTC"),
    "spec": pl.String(), "score": pl.Float64(), "threshold": pl.Float64(), "version": pl.Int64(),
    "source": pl.String(), "reason": pl.String(), "top_features": pl.String(),
}
FALLBACK_THRESHOLD = 0.5  # fallback rules score 0 or 1


def _thresholds(frame: pl.DataFrame, versions: Mapping[int, float | None]) -> pl.Series:
    """Each prediction row's alert threshold: its model version's, or the fallback rule's."""
    mapping = {v: (t if t is not None else FALLBACK_THRESHOLD) for v, t in versions.items()}
    return frame.select(
        pl.col("version").replace_strict(mapping, default=FALLBACK_THRESHOLD, return_dtype=pl.Float64).alias("threshold")
    ).to_series()


def detector_alerts(predictions: pl.DataFrame, step: timedelta, cooldown: timedelta,
                    thresholds: Mapping[int, float | None]) -> pl.DataFrame:
    """Alerts among a detector's prediction rows (any days, any order): each row's score against
    its own threshold (its version's, or the fallback's), one alert per token per ``cooldown``,
    timed when the row's bar closed (``alerted_at``)."""
    rows = predictions.filter(pl.col("score").is_not_null()).with_columns(
        _thresholds(predictions.filter(pl.col("score").is_not_null()), thresholds),
        (pl.col("ts") + step).alias("alerted_at"),
    )
    # raise_alerts compares with one threshold; a margin over each row's own threshold is the same test.
    margin = rows.select("token", pl.col("alerted_at").alias("ts"), (pl.col("score") - pl.col("threshold")).alias("score"))
    fired = raise_alerts(margin, 0.0, cooldown).select("token", pl.col("ts").alias("alerted_at"))
    return rows.join(fired, on=["token", "alerted_at"], how="semi").sort("token", "ts")


def top_features(contributions: np.ndarray | None, x: pl.DataFrame, importance: Mapping[str, float], k: int) -> list[str]:
    """Per row, its ``k`` strongest reasons: features by contribution to the score when the model
    gives them, else by the model's global importance; each as ``name=value (contribution)``."""
    names = x.columns
    values = x.to_numpy()
    out = []
    for i in range(x.height):
        if contributions is not None:
            order = np.argsort(-contributions[i])[:k]
            out.append(", ".join(f"{names[j]}={values[i, j]:.4g} ({contributions[i, j]:+.3g})" for j in order))
        else:
            ranked = sorted(names, key=lambda n: -importance.get(n, 0.0))[:k]
            out.append(", ".join(f"{n}={values[i, names.index(n)]:.4g}" for n in ranked))
    return out
