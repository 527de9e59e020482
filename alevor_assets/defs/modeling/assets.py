"""The asset factory: every model spec becomes ``drift_<name>``, ``model_<name>`` and
``validation_<name>``."""

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dagster as dg
import polars as pl

from alevor_assets.defs.features.assets import training_set
from alevor_assets.defs.automation import follow_upstream, retrain_when_needed
from alevor_assets.defs.modeling.checks import GATE_CHECK, drift_check_specs, drift_results, gate_check_result, gate_check_spec
from alevor_assets.defs.modeling.specs import MODEL_SPECS
from alevor_assets.defs.partitions import single_run
from alevor_assets.defs.resources import AlevorStorage
from alevor_assets.lib import report as rp
from alevor_assets.lib.drift import feature_psi, file_sha256
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


def partition_hashes(wh: Warehouse, spec: ModelSpec, days: list[date]) -> dict[str, str | None]:
    """sha256 of each training_set file: partitions are written byte-for-byte reproducibly, so a
    different hash means different rows."""
    return {d.isoformat(): file_sha256(wh.partition_path("training_set", d, {"spec": spec.name})) for d in days}


def build_drift_asset(spec: ModelSpec, training_set_asset: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """``drift_<name>``: has the newest model's training data changed, and have its features
    drifted since? Its checks failing is what retrains the model."""

    @dg.asset(
        name=f"drift_{spec.name}",
        group_name=spec.name,
        deps=[training_set_asset],
        backfill_policy=single_run,
        check_specs=drift_check_specs(f"drift_{spec.name}", spec),
        automation_condition=follow_upstream(require=dg.AssetSelection.assets()),
        kinds={"polars"},
        description=(
            f"Whether `model_{spec.name}` is still current: compares the training_set partitions its "
            "newest version was trained on with what is stored now (file hashes), and the population "
            "stability index (PSI) of each feature in newer partitions against the training window "
            f"(threshold {spec.drift_psi_threshold}). A failed check retrains the model."
        ),
    )
    def _drift(context: dg.AssetExecutionContext, storage: AlevorStorage) -> dg.MaterializeResult:
        wh, registry = storage.warehouse, storage.registry
        latest = registry.latest(spec.name)
        if latest is None:
            return dg.MaterializeResult(
                metadata={"model_version": None},
                check_results=drift_results(["no model trained yet"], {}, spec.drift_psi_threshold, []),
            )
        meta = latest.metadata
        window = [date.fromisoformat(d) for d in meta["training"]["partitions"]]
        recorded = meta["training"].get("partition_sha256", {})
        now = partition_hashes(wh, spec, window)
        changed = [d for d in now if now[d] != recorded.get(d)]
        newer = [d for d in wh.available_days("training_set", {"spec": spec.name}) if window and d > max(window)]
        psi_values: dict[str, float] = {}
        if newer:
            reference, _ = read_training_rows(wh, spec, window)
            current, _ = read_training_rows(wh, spec, newer)
            psi_values = feature_psi(reference, current, meta["features"])
        top = sorted(psi_values.items(), key=lambda kv: kv[1], reverse=True)
        return dg.MaterializeResult(
            metadata={
                "model_version": latest.version,
                "training_partitions_changed": dg.MetadataValue.json(changed),
                "newer_partitions": dg.MetadataValue.json([d.isoformat() for d in newer]),
                "max_psi": top[0][1] if top else None,
                "psi": dg.MetadataValue.md(rp.table([{"feature": k, "psi": v} for k, v in top[:25]], ["feature", "psi"]) if top else "no newer partitions to compare"),
            },
            check_results=drift_results(changed, psi_values, spec.drift_psi_threshold, [d.isoformat() for d in newer]),
        )

    return _drift


def build_model_assets(spec: ModelSpec, training_set_asset: dg.AssetsDefinition = training_set) -> list[dg.AssetsDefinition]:
    """``drift_<name>``, ``model_<name>`` and ``validation_<name>`` for one spec (a group of
    their own)."""
    model_key = f"model_{spec.name}"
    group = spec.name
    drift = build_drift_asset(spec, training_set_asset)

    @dg.asset(
        name=model_key,
        group_name=group,
        deps=[training_set_asset, drift],
        automation_condition=retrain_when_needed(drift.key),
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
            "training": {
                "partitions": list(counts), "rows_by_partition": counts, "split": result.split.describe(),
                "partition_sha256": partition_hashes(wh, spec, days),
            },
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
        automation_condition=follow_upstream(require=dg.AssetSelection.assets(_model.key)),
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

    return [drift, _model, _validation]


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
