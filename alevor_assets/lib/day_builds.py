"""One day's partition of ``features``, a spec's labels, training rows and predictions, built from
the warehouse.

Each function reads what its day needs around it (earlier days as warm-up, later days for label
horizons) and yields frames ready for the contract check; the assets stage and publish them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import polars as pl

from alevor_assets.lib.features import FeatureConfig, compute_features, restrict_to_window
from alevor_assets.lib.intervals import day_start_us, days_spanned, interval_timedelta
from alevor_assets.lib.labels import LabelContext, finalize_labels
from alevor_assets.lib.schemas import DATE_COLUMN, UTC_US
from alevor_assets.lib.alerts import ALERT_SCHEMA, detector_alerts, top_features
from alevor_assets.lib.registry import ArtifactIntegrityError, ModelRegistry
from alevor_assets.lib.serving import MODEL, ServingModel, live_drift, load_serving_model, predictions, score_summary
from alevor_assets.lib.specs import ModelSpec
from alevor_assets.lib.training_set import build_training_rows, population
from alevor_assets.lib.warehouse import MissingPartitionError, Warehouse, days_between
from alevor_assets.lib.warmup import DayPlan

DAY = timedelta(days=1)


def _tokens_of(wh: Warehouse, day: date) -> pl.DataFrame | None:
    files = wh.partition_files("tokens", [day])
    return pl.read_parquet(files[0]) if files else None


def _on_day(frame: pl.DataFrame, day: date) -> pl.DataFrame:
    return restrict_to_window(frame, day_start_us(day), day_start_us(day + DAY)).with_columns(pl.lit(day).alias(DATE_COLUMN))


def day_features(
    wh: Warehouse, day: date, intervals: Sequence[str], config: FeatureConfig, plan: DayPlan
) -> Iterator[tuple[str, pl.DataFrame]]:
    """``(interval, features)`` of ``day`` for each feature interval, whole tokens at a time (so
    slices are exact and memory stays bounded on very large days). Each token's bars (of the
    interval and its coarser multi-timeframe intervals) and trades are read from the day the
    ``plan`` found its windows full (``lib/warmup.py``), so values equal those of the continuous
    series."""
    token_meta = _tokens_of(wh, day)
    for token_slice in wh.token_batches(day):
        trades = read_history(wh, "raw_trades", None, day, plan.trades_from, token_slice)
        # Each interval's bars are read once per slice (several intervals use the same coarser
        # ones), and the work that depends only on the trades is shared between the intervals.
        bars: dict[str, pl.DataFrame | None] = {}
        memo: dict = {}
        for interval in intervals:
            for j in [interval, *config.coarser(interval)]:
                if j not in bars:
                    bars[j] = read_history(wh, "bars", {"interval": j}, day, plan.bars_from[j], token_slice)
            parts = [frame for j in [interval, *config.coarser(interval)] if (frame := bars[j]) is not None]
            snap = compute_features(pl.concat(parts), interval, tokens=token_meta, trades=trades, config=config, memo=memo)
            yield interval, _on_day(snap, day)


def read_history(
    wh: Warehouse, asset: str, keys: Mapping[str, str] | None, day: date, starts: Mapping[str, date], tokens: list[str]
) -> pl.DataFrame | None:
    """Rows of ``tokens`` from ``day`` and, for each token, the earlier days from its start on."""
    first = min((starts.get(t, day) for t in tokens), default=day)
    scans = []
    for d in days_between(first, day):
        who = tokens if d == day else [t for t in tokens if starts.get(t, day) <= d]
        path = wh.partition_path(asset, d, keys)
        if who and path.exists():
            scans.append(pl.scan_parquet(path).filter(pl.col("token").is_in(who)))
    return pl.concat(scans).collect() if scans else None


def days_ahead(spec: ModelSpec) -> int:
    """How many days after its own day the spec's labels read."""
    return days_spanned(spec.label.build().look_ahead(spec.interval))


def day_labels(wh: Warehouse, day: date, spec: ModelSpec) -> pl.DataFrame:
    """The spec's labels of ``day``. Forward-looking labels read the head of later days; a label
    whose horizon is not covered by data yet is left out until it is."""
    strategy = spec.label.build()
    events = None
    if strategy.needs_events:
        events_files = wh.partition_files("labelled_events", [day])
        if not events_files:
            raise MissingPartitionError(f"{spec.labels_asset} needs labelled_events for {day}; materialize it first")
        events = pl.read_parquet(events_files).unique()
    first = day - timedelta(days=days_spanned(strategy.look_back(spec.interval)))
    last = day + timedelta(days=days_spanned(strategy.look_ahead(spec.interval)))
    window, data_end = wh.contiguous("bars", {"interval": spec.interval}, first, last)
    if window.height == 0:
        raw = pl.DataFrame(schema={"token": pl.Utf8, "ts": UTC_US, "label": pl.Int64, "horizon_end": UTC_US})
    else:
        raw = strategy.compute(LabelContext(window, spec.interval, events=events, tokens=_tokens_of(wh, day)))
        raw = restrict_to_window(raw, day_start_us(day), day_start_us(day + DAY))
    frame = finalize_labels(raw, spec.label.set_name, spec.interval, strategy.task, data_end)
    return frame.with_columns(pl.lit(day).alias(DATE_COLUMN))


def day_training_rows(wh: Warehouse, day: date, spec: ModelSpec) -> pl.DataFrame:
    """The spec's training rows of ``day``: its features joined with its labels."""
    feats = wh.read_partition("features", day, {"interval": spec.interval})
    labs = wh.read_partition(spec.labels_asset, day)
    return build_training_rows(spec, feats, labs).with_columns(pl.lit(day).alias(DATE_COLUMN))


def day_predictions(
    wh: Warehouse, spec: ModelSpec, day: date, load: Callable[[], ServingModel]
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The spec's predictions of ``day`` (by the model ``load`` returns, or its fallback) and what
    the day says about them: the score distribution and, when a model scored, the PSI of the day's
    features and scores against the model's training-time distributions."""
    feats = wh.read_partition("features", day, {"interval": spec.interval})
    frame = predictions(spec, feats, load)
    monitoring: dict[str, Any] = {"scores": score_summary(frame)}
    if frame.height and frame["source"][0] == MODEL:
        # Against the training distributions, so on the rows the spec trains on (every bar is
        # scored; a young-token detector's reference holds young tokens only).
        rows, scored = feats, frame
        if (keep := population(spec)) is not None:
            mask = feats.select(keep).to_series()
            rows, scored = feats.filter(mask), frame.filter(mask)
        monitoring["drift"] = live_drift(load(), rows, scored)
    return frame.with_columns(pl.lit(day).alias(DATE_COLUMN)), monitoring


def _serving_models(registry: ModelRegistry, spec: ModelSpec, versions: list[int]) -> dict[int, ServingModel | str]:
    """Each version's loaded model, or why it cannot be loaded."""
    out: dict[int, ServingModel | str] = {}
    for v in versions:
        try:
            out[v] = load_serving_model(registry, spec.name, v)
        except (LookupError, ArtifactIntegrityError) as exc:
            out[v] = str(exc)
    return out


def _explained(wh: Warehouse, spec: ModelSpec, day: date, fired: pl.DataFrame, models: dict[int, ServingModel | str]) -> pl.Series:
    """Each alert's top contributing features (``serving.alert_top_features`` of them)."""
    return explain_alerts(spec, fired, wh.read_partition("features", day, {"interval": spec.interval}), models)


def explain_alerts(spec: ModelSpec, fired: pl.DataFrame, feats: pl.DataFrame, models: Mapping[int, ServingModel | str]) -> pl.Series:
    """Each alert's top contributing features from the feature rows ``feats`` it was scored on:
    by the model's own contributions, or the fallback rule's inputs."""
    rule = spec.fallback_rule()
    texts = [""] * fired.height
    for version, group in fired.with_row_index("_i").group_by("version", maintain_order=True):
        rows = group.join(feats, on=["token", "ts"], how="left", suffix="_f")
        model = models.get(version[0]) if version[0] is not None else None
        if isinstance(model, ServingModel):
            x = rows.select([pl.col(f).cast(pl.Float64) for f in model.features])
            found = top_features(model.trainer.contributions(x), x, model.trainer.feature_importance(), spec.serving.alert_top_features)
        elif model is None and rule is not None and all(c in rows.columns for c in rule.needs()):
            x = rows.select([pl.col(c).cast(pl.Float64) for c in rule.needs()])
            found = top_features(None, x, {}, spec.serving.alert_top_features)
        else:
            found = [f"(model unavailable: {model})" if isinstance(model, str) else ""] * rows.height
        for i, text in zip(rows["_i"].to_list(), found):
            texts[i] = text
    return pl.Series("top_features", texts, dtype=pl.String)


def day_alerts(wh: Warehouse, registry: ModelRegistry, detectors: Sequence[ModelSpec], day: date) -> tuple[pl.DataFrame, dict[str, str]]:
    """The detectors' alerts of ``day``: one per token and episode (``alerts.cooldown`` of each
    spec), each with its score, threshold, version or fallback reason and top features; and, per
    spec without predictions for the day, why it is missing. The previous day's predictions are
    read too, so an episode that began before midnight raises no second alert after it."""
    frames, missing = [], {}
    for spec in detectors:
        days = [d for d in (day - DAY, day) if wh.partition_path(spec.predictions_asset, d).exists()]
        if day not in days:
            missing[spec.name] = f"no {spec.predictions_asset} partition for {day}"
            continue
        preds = pl.concat([wh.read_partition(spec.predictions_asset, d) for d in days])
        models = _serving_models(registry, spec, sorted(v for v in preds["version"].unique().to_list() if v is not None))
        thresholds = {v: (m.threshold if isinstance(m, ServingModel) else None) for v, m in models.items()}
        fired = restrict_to_window(
            detector_alerts(preds, interval_timedelta(spec.interval), spec.alerts.cooldown, thresholds),
            day_start_us(day), day_start_us(day + DAY),
        )
        frames.append(fired.with_columns(_explained(wh, spec, day, fired, models)).select(list(ALERT_SCHEMA)))
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=ALERT_SCHEMA)
    return frame.sort("ts", "token", "spec").with_columns(pl.lit(day).alias(DATE_COLUMN)), missing
