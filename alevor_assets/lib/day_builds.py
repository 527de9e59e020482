"""One day's partition of ``features``, ``labels`` and ``training_set``, built from the warehouse.

Each function reads what its day needs around it (earlier days as warm-up, later days for label
horizons) and yields frames ready for the contract check; the assets stage and publish them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, timedelta

import polars as pl

from alevor_assets.lib.features import FeatureConfig, compute_features, restrict_to_window
from alevor_assets.lib.intervals import day_start_us, days_spanned
from alevor_assets.lib.labels import LabelContext, finalize_labels
from alevor_assets.lib.schemas import DATE_COLUMN, UTC_US
from alevor_assets.lib.specs import LabelSpec, ModelSpec
from alevor_assets.lib.training_set import build_training_rows
from alevor_assets.lib.warehouse import MissingPartitionError, Warehouse

DAY = timedelta(days=1)


def _tokens_of(wh: Warehouse, day: date) -> pl.DataFrame | None:
    files = wh.partition_files("tokens", [day])
    return pl.read_parquet(files[0]) if files else None


def _on_day(frame: pl.DataFrame, day: date) -> pl.DataFrame:
    return restrict_to_window(frame, day_start_us(day), day_start_us(day + DAY)).with_columns(pl.lit(day).alias(DATE_COLUMN))


def day_features(
    wh: Warehouse, day: date, intervals: Sequence[str], config: FeatureConfig, warmup_days: Mapping[str, int]
) -> Iterator[tuple[str, pl.DataFrame]]:
    """``(interval, features)`` of ``day`` for each feature interval, whole tokens at a time (so
    slices are exact and memory stays bounded on very large days). Each interval reads
    ``warmup_days[interval]`` earlier days of its bars (and of its coarser multi-timeframe bars),
    so values equal those of the continuous series."""
    token_meta = _tokens_of(wh, day)
    for token_slice in wh.token_batches(day):
        trades_lf = wh.scan_tokens("raw_trades", day - DAY, day, None, token_slice)
        trades = trades_lf.collect() if trades_lf is not None else None
        for interval in intervals:
            parts = [
                lf for j in [interval, *config.coarser(interval)]
                if (lf := wh.scan_tokens("bars", day - timedelta(days=warmup_days[j]), day, {"interval": j}, token_slice)) is not None
            ]
            snap = compute_features(pl.concat(parts), interval, tokens=token_meta, trades=trades, config=config)
            yield interval, _on_day(snap, day)


def days_ahead(label_sets: Mapping[tuple[str, str], LabelSpec]) -> int:
    """How many days after its own day any label set reads."""
    return max((days_spanned(s.build().look_ahead(i)) for (i, _), s in label_sets.items()), default=0)


def day_labels(
    wh: Warehouse, day: date, label_sets: Mapping[tuple[str, str], LabelSpec]
) -> Iterator[tuple[str, str, pl.DataFrame]]:
    """``(interval, label set, labels)`` of ``day`` for each label set. Forward-looking labels
    read the head of later days; a label whose horizon is not covered by data yet is left out
    until it is."""
    events_files = wh.partition_files("labelled_events", [day])
    events = pl.read_parquet(events_files).unique() if events_files else None
    token_meta = _tokens_of(wh, day)
    for (interval, set_name), label_spec in label_sets.items():
        strategy = label_spec.build()
        if strategy.needs_events and events is None:
            raise MissingPartitionError(f"label set {set_name!r} needs labelled_events for {day}; materialize it first")
        first = day - timedelta(days=days_spanned(strategy.look_back(interval)))
        last = day + timedelta(days=days_spanned(strategy.look_ahead(interval)))
        window, data_end = wh.contiguous("bars", {"interval": interval}, first, last)
        if window.height == 0:
            raw = pl.DataFrame(schema={"token": pl.Utf8, "ts": UTC_US, "label": pl.Int64, "horizon_end": UTC_US})
        else:
            raw = strategy.compute(LabelContext(window, interval, events=events, tokens=token_meta))
            raw = restrict_to_window(raw, day_start_us(day), day_start_us(day + DAY))
        frame = finalize_labels(raw, set_name, interval, strategy.task, data_end)
        yield interval, set_name, frame.with_columns(pl.lit(day).alias(DATE_COLUMN))


def day_training_rows(wh: Warehouse, day: date, spec: ModelSpec) -> pl.DataFrame:
    """The spec's training rows of ``day``: its features joined with its labels."""
    feats = wh.read_partition("features", day, {"interval": spec.interval})
    labs = wh.read_partition("labels", day, {"interval": spec.interval, "strategy": spec.label.set_name})
    return build_training_rows(spec, feats, labs).with_columns(pl.lit(day).alias(DATE_COLUMN))
