"""The asset factory: every model spec becomes ``model_<name>`` and ``validation_<name>``."""

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dagster as dg
import polars as pl

from alevor_assets.defs.features.assets import training_set
from alevor_assets.defs.modeling.checks import GATE_CHECK, gate_check_result, gate_check_spec
from alevor_assets.defs.modeling.specs import MODEL_SPECS
from alevor_assets.defs.partitions import single_run
from alevor_assets.defs.resources import AlevorStorage
from alevor_assets.lib.modeling import evaluate, split_rows, train, validation_report, walk_forward
from alevor_assets.lib.registry import ArtifactIntegrityError
from alevor_assets.lib.specs import ModelSpec
from alevor_assets.lib.training import make_trainer
from alevor_assets.lib.validation import InsufficientDataError, evaluate_gate
from alevor_assets.lib.version import code_version
from alevor_assets.lib.warehouse import Warehouse


def training_window(wh: Warehouse, spec: ModelSpec) -> list[date]:
    """Days the spec trains on: ``window.days`` ending at ``window.end`` or at the newest
    training_set partition of the spec."""
    available = wh.available_days("training_set", {"spec": spec.name})
    if not available:
        raise dg.Failure(f"no training_set partitions for spec {spec.name!r}; materialize training_set first")
    end = spec.window_end or available[-1]
    start = end - timedelta(days=spec.window_days - 1)
    return [d for d in available if start <= d <= end]


def read_training_rows(wh: Warehouse, spec: ModelSpec, days: list[date]) -> tuple[pl.DataFrame, dict[str, int]]:
    frames = {d.isoformat(): wh.read_partition("training_set", d, {"spec": spec.name}) for d in days}
    counts = {k: v.height for k, v in frames.items()}
    # Days without any labelled row carry no realized_return column; align by name.
    return pl.concat(list(frames.values()), how="diagonal_relaxed"), counts


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def build_model_assets(spec: ModelSpec, training_set_asset: dg.AssetsDefinition = training_set) -> list[dg.AssetsDefinition]:
    """``model_<name>`` and ``validation_<name>`` for one spec (a group of their own)."""
    model_key = f"model_{spec.name}"
    group = spec.name

    @dg.asset(
        name=model_key,
        group_name=group,
        deps=[training_set_asset],
        # Not partitioned; the policy lets `--partition-range` select the whole graph in one run.
        backfill_policy=single_run,
        output_required=False,
        kinds={spec.trainer.name.split("_")[0]},
        description=(
            f"{spec.description}\n\nTrains `{spec.trainer.name}` on `{spec.label.strategy}` labels at "
            f"{spec.interval} over the last {spec.window_days} training_set days (spec "
            f"`{spec.path.split('/')[-1]}`); each materialization adds a registry version."
        ),
        metadata={"spec": dg.MetadataValue.json(spec.raw())},
    )
    def _model(context: dg.AssetExecutionContext, storage: AlevorStorage) -> Iterator[Any]:
        wh = storage.warehouse
        days = training_window(wh, spec)
        rows, counts = read_training_rows(wh, spec, days)
        trainer = make_trainer(spec.trainer.name, spec.trainer.params)
        try:
            result = train(spec, rows, trainer)
        except InsufficientDataError as exc:
            # Too little data yet is not an error of the run: record why, train once there is.
            context.log.warning(f"{spec.name}: not trained: {exc}")
            yield dg.AssetObservation(
                asset_key=context.asset_key,
                metadata={"skipped": str(exc), "dagster/row_count": rows.height, "partitions": dg.MetadataValue.json(counts)},
            )
            return
        importance = trainer.feature_importance()
        top = [k for k, _ in sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:10]]
        metadata = {
            "spec": spec.raw(),
            "interval": spec.interval,
            "label": {"strategy": spec.label.strategy, "set": spec.label.set_name, "params": spec.label.params},
            "trainer": {"name": trainer.name, "params": trainer.params()},
            "features": result.features,
            "threshold": result.threshold,
            "training": {"partitions": list(counts), "rows_by_partition": counts, "split": result.split.describe()},
            "validation_metrics": result.validation_metrics,
            "fit": trainer.fit_info(),
            "top_features": top,
            "feature_importance": importance,
            "code_version": code_version(),
        }
        version = storage.registry.save(spec.name, trainer, metadata)
        context.log.info(f"registered {spec.name} v{version.version} ({version.sha256[:12]})")
        yield dg.MaterializeResult(
            metadata={
                "version": version.version,
                "artifact": dg.MetadataValue.path(str(version.artifact)),
                "artifact_sha256": version.sha256,
                "partitions": dg.MetadataValue.json(counts),
                "dagster/row_count": rows.height,
                "train_rows": result.split.train.height,
                "validation_rows": result.split.validation.height,
                "test_rows": result.split.test.height,
                "purged_rows": result.split.purged_rows,
                **{f"validation_{k}": v for k, v in _scalars(result.validation_metrics).items()},
            }
        )

    @dg.asset(
        name=f"validation_{spec.name}",
        group_name=group,
        deps=[_model],
        backfill_policy=single_run,
        check_specs=[gate_check_spec(f"validation_{spec.name}", spec)],
        kinds={"markdown"},
        description=(
            f"Held-out evaluation of the newest `{model_key}` version on the chronologically last "
            f"{spec.split.test:.0%} of its window (purged, embargo {spec.split.embargo}); gate "
            f"{spec.gate or 'none'}; promotes it only if it passes and beats the promoted version on "
            f"`{spec.primary_metric}`. The report (Markdown with plots) is shown here and written "
            "next to the model."
        ),
    )
    def _validation(context: dg.AssetExecutionContext, storage: AlevorStorage) -> Iterator[Any]:
        registry = storage.registry
        event = context.instance.get_latest_materialization_event(dg.AssetKey(model_key))
        if event is None or event.asset_materialization is None:
            raise dg.Failure(f"{model_key} has not been materialized yet")
        version = int(event.asset_materialization.metadata["version"].value)
        trainer, mv = registry.load(spec.name, version)
        meta = mv.metadata
        days = [date.fromisoformat(d) for d in meta["training"]["partitions"]]
        rows, counts = read_training_rows(storage.warehouse, spec, days)
        if counts != meta["training"]["rows_by_partition"]:
            raise dg.Failure(
                f"training_set changed since {spec.name} v{version} was trained "
                f"(rows {counts} vs {meta['training']['rows_by_partition']}); rematerialize {model_key}"
            )
        test = split_rows(spec, rows).test.rows
        classes = (meta.get("fit") or {}).get("classes")
        evaluation = evaluate(spec, trainer, test, meta["features"], meta["threshold"], classes)
        metrics = evaluation.metrics
        walk = walk_forward(spec, rows, meta["features"], lambda: make_trainer(spec.trainer.name, spec.trainer.params))
        if walk.get("mean") is not None:
            metrics[f"walk_forward_{spec.primary_metric}_mean"] = walk["mean"]
        gate = evaluate_gate(metrics, spec.gate)
        new_value = metrics.get(spec.primary_metric)
        incumbent = registry.promoted(spec.name)
        incumbent_value, incumbent_note = None, "no promoted version yet"
        if incumbent is not None:
            try:
                old, old_mv = registry.load(spec.name, int(incumbent["version"]))
                old_meta = old_mv.metadata
                old_eval = evaluate(spec, old, test, old_meta["features"], old_meta["threshold"], (old_meta.get("fit") or {}).get("classes"))
                incumbent_value = old_eval.metrics.get(spec.primary_metric)
                incumbent_note = f"v{incumbent['version']} scores {incumbent_value} on the same test rows"
            except (ArtifactIntegrityError, KeyError, ValueError, pl.exceptions.ColumnNotFoundError) as exc:
                incumbent_value = incumbent.get("primary_value")
                incumbent_note = f"v{incumbent['version']} recorded {incumbent_value} (could not re-score: {exc})"
        beats = new_value is not None and (incumbent_value is None or new_value > incumbent_value)
        promote = gate.passed and beats
        if promote:
            decision = f"**Promoted v{version}**: gate passed and {spec.primary_metric} = {new_value} beats the incumbent ({incumbent_note})."
        elif not gate.passed:
            decision = f"**Not promoted**: gate failed ({'; '.join(gate.failures())}). The promoted version stays ({incumbent_note})."
        else:
            decision = f"**Not promoted**: {spec.primary_metric} = {new_value} does not beat the incumbent ({incumbent_note})."
        report = validation_report(
            spec, version, evaluation, decision, meta.get("feature_importance", {}), test, meta["training"], walk
        )
        report_path = report.write(mv.directory)
        registry.record_validation(
            spec.name, version, metrics=metrics, primary_metric=spec.primary_metric,
            gate_passed=gate.passed, promote=promote, report_path=report_path,
        )
        context.log.info(decision)
        yield dg.MaterializeResult(
            metadata={
                "version": version,
                "promoted": promote,
                "decision": decision,
                "report": dg.MetadataValue.md(report.markdown(inline_plots=True)),
                "report_path": dg.MetadataValue.path(str(report_path)),
                "metrics": dg.MetadataValue.json({k: v for k, v in metrics.items()}),
                "walk_forward": dg.MetadataValue.json(walk),
                **{k: v for k, v in _scalars(metrics).items()},
            },
            check_results=[gate_check_result(gate)],
        )

    return [_model, _validation]


def build_spec_assets(specs: list[ModelSpec]) -> list[dg.AssetsDefinition]:
    """``labels``, ``training_set`` and every model and validation asset for ``specs`` (for a
    graph of your own specs, e.g. in a notebook or a test)."""
    from alevor_assets.defs.features.assets import build_labels_asset, build_training_set_asset
    from alevor_assets.lib.specs import label_sets

    labels_asset = build_labels_asset(label_sets(specs))
    training = build_training_set_asset(specs, labels_asset)
    return [labels_asset, training, *(a for spec in specs for a in build_model_assets(spec, training))]


MODEL_ASSETS = [a for spec in MODEL_SPECS for a in build_model_assets(spec)]
__all__ = ["GATE_CHECK", "MODEL_ASSETS", "build_model_assets", "build_spec_assets", "training_window"]
