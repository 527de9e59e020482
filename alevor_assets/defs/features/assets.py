"""Features, labels and per-spec training rows."""

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import polars as pl

from alevor_assets.defs.features.checks import (
    FEATURES_CHECKS,
    LABELS_CHECKS,
    TRAINING_SET_CHECKS,
    validate_features,
    validate_labels,
    validate_training_rows,
)
from alevor_assets.defs.automation import follow_upstream
from alevor_assets.defs.market_data.assets import bars, labelled_events, raw_trades, tokens
from alevor_assets.defs.modeling.specs import LABEL_SETS, MODEL_SPECS
from alevor_assets.defs.partitions import daily_partitions, following_days, single_run
from alevor_assets.defs.publishing import PartitionBatch
from alevor_assets.defs.resources import AlevorStorage, PipelineSettings
from alevor_assets.lib.features import compute_features, restrict_to_window
from alevor_assets.lib.labels import LabelContext, finalize_labels
from alevor_assets.lib.modeling import build_training_rows, spec_features
from alevor_assets.lib.schemas import DATE_COLUMN, UTC_US
from alevor_assets.lib.specs import LabelSpec, ModelSpec
from alevor_assets.lib.warehouse import Warehouse

GROUP = "features"
DAY = timedelta(days=1)
Result = Iterator[dg.MaterializeResult | dg.AssetCheckResult]


def _day_start_us(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()) * 1_000_000


def _days_spanned(delta: timedelta) -> int:
    return -(-int(delta.total_seconds()) // 86_400) if delta > timedelta(0) else 0


def _token_batches(wh: Warehouse, day: date, target_rows: int = 4_000_000) -> list[list[str]]:
    """The day's tokens in sorted slices of roughly ``target_rows`` trades."""
    import pyarrow.parquet as pq

    path = wh.require("raw_trades", day)
    counts = pl.scan_parquet(path).group_by("token").len().sort("token").collect()
    if counts.height == 0 or pq.ParquetFile(path).metadata.num_rows <= target_rows:
        return [counts["token"].to_list()] if counts.height else []
    batches, current, rows = [], [], 0
    for token, n in counts.iter_rows():
        if current and rows + n > target_rows:
            batches.append(current)
            current, rows = [], 0
        current.append(token)
        rows += n
    return batches + ([current] if current else [])


def _scan_days(wh: Warehouse, asset: str, first: date, last: date, keys: dict | None, tokens: list[str]) -> pl.LazyFrame | None:
    lf = wh.scan(asset, first, last, keys)
    return None if lf is None else lf.filter(pl.col("token").is_in(tokens))


@dg.asset(
    group_name=GROUP,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    check_specs=FEATURES_CHECKS,
    output_required=False,
    # Same-day lineage only. The warm-up read from earlier days is context, not a tracked input:
    # tracking it would make every backfill also target the day after its range, which has no
    # bars yet (and a 1000-bar warm-up spans up to 400 days of coarse bars anyway).
    deps=[bars, raw_trades, tokens],
    automation_condition=follow_upstream(),
    kinds={"polars", "parquet"},
)
def features(context: dg.AssetExecutionContext, storage: AlevorStorage, settings: PipelineSettings) -> Result:
    """Feature snapshots per token and bar, for each feature interval: returns and volatility
    over bars and over wall-clock spans, per-second rates, order-flow imbalance, the standard
    indicators exactly as TA-Lib defines them (RSI, MACD, Bollinger, ATR), rush-trade and
    La Morgia pump features from the trades, multi-timeframe context from the last complete
    coarser bars, token age and time of day. Each value uses only data up to its own bar; a
    partition reads earlier days as warm-up, so it equals the continuous series."""
    wh = storage.warehouse
    config = settings.feature_config()
    batch = PartitionBatch(storage, "features", context.run.run_id, sort_by=["token", "ts"])
    for day in batch.days(context, [("bars", {"interval": i}) for i in settings.features()]):
        meta = wh.partition_files("tokens", [day])
        token_meta = pl.read_parquet(meta[0]) if meta else None
        for interval in settings.features():
            batch.open_partition(day, {"interval": interval})
        # Whole tokens at a time: features are per token, so slices are exact and memory stays
        # bounded on very large days.
        for token_slice in _token_batches(wh, day):
            trades_lf = _scan_days(wh, "raw_trades", day - DAY, day, None, token_slice)
            trades = trades_lf.collect() if trades_lf is not None else None
            for interval in settings.features():
                parts = []
                for j in [interval, *config.coarser(interval)]:
                    lf = _scan_days(wh, "bars", day - timedelta(days=settings.warmup_days(j)), day, {"interval": j}, token_slice)
                    if lf is not None:
                        parts.append(lf)
                snap = compute_features(pl.concat(parts), interval, tokens=token_meta, trades=trades, config=config)
                part = restrict_to_window(snap, _day_start_us(day), _day_start_us(day + DAY))
                part = part.with_columns(pl.lit(day).alias(DATE_COLUMN))
                if batch.audit(day, part, validate_features(part)):
                    batch.append(day, part, {"interval": interval})
    yield from batch.finish(context, {"intervals": ", ".join(settings.features())})


def _bars_window(wh: Warehouse, interval: str, first: date, last: date) -> tuple[pl.DataFrame, int | None]:
    """Bars of ``interval`` for days ``first..last`` that exist, and the end of the data (µs)."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    files = wh.partition_files("bars", days, {"interval": interval})
    if not files:
        return pl.DataFrame(), None
    present = wh.available_days("bars", {"interval": interval})
    # Data is contiguous only up to the first missing day after `first`.
    end_day = first
    for d in days:
        if d not in present:
            break
        end_day = d + DAY
    frame = pl.read_parquet(files).filter(pl.col("ts").dt.epoch("us") < _day_start_us(end_day))
    return frame.sort("token", "ts"), _day_start_us(end_day)


def _days_ahead(label_sets: Mapping[tuple[str, str], LabelSpec]) -> int:
    """How many days after its own day any label set reads."""
    return max((_days_spanned(s.build().look_ahead(i)) for (i, _), s in label_sets.items()), default=0)


def build_labels_asset(label_sets: Mapping[tuple[str, str], LabelSpec]) -> dg.AssetsDefinition:
    """The ``labels`` asset for these (interval, label set) pairs."""
    ahead_days = _days_ahead(label_sets)

    @dg.asset(
        name="labels",
        group_name=GROUP,
        partitions_def=daily_partitions,
        backfill_policy=single_run,
        check_specs=LABELS_CHECKS,
        output_required=False,
        deps=[
            dg.AssetDep(
                bars,
                # The look-ahead is tracked (a day's last labels complete once the next day lands);
                # the look-back, like the features' warm-up, is context.
                partition_mapping=following_days(max(ahead_days, 1)),
            ),
            labelled_events,
            tokens,
        ],
        # Later days may not exist yet (labels without a covered horizon wait for them): only the
        # day's tokens must exist.
        automation_condition=follow_upstream(require=dg.AssetSelection.assets(tokens)),
        kinds={"polars", "parquet"},
    )
    def _labels(context: dg.AssetExecutionContext, storage: AlevorStorage) -> Result:
        """Training targets for every label set the model specs use (`strategy` names the set),
        with `weight`, `horizon_end` (the end of what each label looks at) and, for tradable
        strategies, `realized_return`. Forward-looking labels read the head of later days; a
        label whose horizon is not covered by data yet is left out until it is."""
        wh = storage.warehouse
        batch = PartitionBatch(storage, "labels", context.run.run_id, sort_by=["token", "ts"])
        own_bars = [("bars", {"interval": i}) for i in sorted({i for i, _ in label_sets})]
        for day in batch.days(context, own_bars):
            events_files = wh.partition_files("labelled_events", [day])
            events = pl.read_parquet(events_files).unique() if events_files else None
            token_files = wh.partition_files("tokens", [day])
            token_meta = pl.read_parquet(token_files) if token_files else None
            for (interval, set_name), label_spec in label_sets.items():
                strategy = label_spec.build()
                if strategy.needs_events and events is None:
                    raise dg.Failure(f"label set {set_name!r} needs labelled_events for {day}; materialize it first")
                first = day - timedelta(days=_days_spanned(strategy.look_back(interval)))
                last = day + timedelta(days=_days_spanned(strategy.look_ahead(interval)))
                window, data_end = _bars_window(wh, interval, first, last)
                if window.height == 0:
                    raw = pl.DataFrame(schema={"token": pl.Utf8, "ts": UTC_US, "label": pl.Int64, "horizon_end": UTC_US})
                else:
                    raw = strategy.compute(LabelContext(window, interval, events=events, tokens=token_meta))
                    raw = restrict_to_window(raw, _day_start_us(day), _day_start_us(day + DAY))
                frame = finalize_labels(raw, set_name, interval, strategy.task, data_end).with_columns(
                    pl.lit(day).alias(DATE_COLUMN)
                )
                if batch.audit(day, frame, validate_labels(frame)):
                    batch.stage(day, frame, {"interval": interval, "strategy": set_name})
        yield from batch.finish(context, {"label_sets": ", ".join(f"{s}@{i}" for i, s in label_sets)})

    return _labels


def build_training_set_asset(specs: Sequence[ModelSpec], labels_asset: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """The ``training_set`` asset for these specs."""

    @dg.asset(
        name="training_set",
        group_name=GROUP,
        partitions_def=daily_partitions,
        backfill_policy=single_run,
        check_specs=TRAINING_SET_CHECKS,
        output_required=False,
        deps=[features, labels_asset],
        automation_condition=follow_upstream(),
        kinds={"polars", "parquet"},
    )
    def _training_set(context: dg.AssetExecutionContext, storage: AlevorStorage) -> Result:
        """Per model spec (`spec`), the rows it trains on: the spec's features joined with its
        labels on (token, interval, ts), after the spec's filters (e.g. young tokens only)."""
        wh = storage.warehouse
        batch = PartitionBatch(storage, "training_set", context.run.run_id, sort_by=["token", "ts"])
        inputs = [("features", {"interval": s.interval}) for s in specs] + [
            ("labels", {"interval": s.interval, "strategy": s.label.set_name}) for s in specs
        ]
        for day in batch.days(context, inputs):
            for spec in specs:
                feats = wh.read_partition("features", day, {"interval": spec.interval})
                labs = wh.read_partition("labels", day, {"interval": spec.interval, "strategy": spec.label.set_name})
                rows = build_training_rows(spec, feats, labs).with_columns(pl.lit(day).alias(DATE_COLUMN))
                if batch.audit(day, rows, validate_training_rows(rows, spec_features(spec, feats.columns[3:]))):
                    batch.stage(day, rows, {"spec": spec.name})
        yield from batch.finish(context, {"specs": ", ".join(s.name for s in specs)})

    return _training_set


labels = build_labels_asset(LABEL_SETS)
training_set = build_training_set_asset(MODEL_SPECS, labels)
