"""The asset factory: every model spec becomes a group of its own, ``labels_<name>``,
``training_set_<name>``, ``drift_<name>``, ``model_<name>``, ``validation_<name>`` (with
``promoted_model_<name>``) and ``predictions_<name>``. The lifecycle itself is
``lib/lifecycle.py``; scoring is ``lib/serving.py``."""

from collections.abc import Sequence

import dagster as dg

from alevor_assets.defs.automation import follow_upstream, retrain_when_needed
from alevor_assets.defs.modeling.checks import drift_check_specs, drift_results, gate_check_result, gate_check_spec, gate_not_evaluated
from alevor_assets.defs.modeling.metadata import drift_metadata, model_metadata, recorded_version, validation_metadata
from alevor_assets.defs.modeling.predictions import build_predictions_asset
from alevor_assets.defs.modeling.training_data import build_labels_asset, build_training_set_asset
from alevor_assets.defs.partitions import single_run
from alevor_assets.defs.resources import AlevorStorage
from alevor_assets.lib.lifecycle import drift_status, train_version, validate_version
from alevor_assets.lib.specs import ModelSpec, model_specs


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
    def _drift(storage: AlevorStorage) -> dg.MaterializeResult:
        status = drift_status(spec, storage.warehouse, storage.registry)
        return dg.MaterializeResult(metadata=drift_metadata(status), check_results=drift_results(status))

    return _drift


def build_model_asset(spec: ModelSpec, training_set_asset: dg.AssetsDefinition, drift: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """``model_<name>``: trains a new registry version on the spec's window."""

    @dg.asset(
        name=f"model_{spec.name}",
        group_name=spec.name,
        deps=[training_set_asset, drift],
        automation_condition=retrain_when_needed(drift.key),
        # Not partitioned; the policy lets `--partition-range` select the whole graph in one run.
        backfill_policy=single_run,
        kinds={spec.trainer.name.split("_")[0]},
        description=(
            f"{spec.description}\n\nTrains `{spec.trainer.name}` on `{spec.label.strategy}` labels at "
            f"{spec.interval} over the last {spec.window_days} days of `{spec.training_set_asset}`; each "
            "materialization adds a registry version, or says why it could not train yet (no `version` "
            f"in its metadata). Spec: `{spec.path}`"
            f"{'' if spec.shipped else ' (from ALEVOR_SPECS)'}."
        ),
        metadata={
            "spec": dg.MetadataValue.json(spec.raw()),
            "spec_file": dg.MetadataValue.path(spec.path),
            "spec_origin": "shipped" if spec.shipped else "ALEVOR_SPECS",
        },
    )
    def _model(context: dg.AssetExecutionContext, storage: AlevorStorage) -> dg.MaterializeResult:
        trained = train_version(spec, storage.warehouse, storage.registry)
        if trained.version is None:
            # Too little data yet is not an error of the run: the materialization records why,
            # without a version. It is never left out: Dagster skips every step downstream of
            # an output not produced, which would take the spec's fallback predictions and every
            # detector's alerts in the same run down with it.
            context.log.warning(f"{spec.name}: not trained: {trained.skipped}")
        else:
            context.log.info(f"registered {spec.name} v{trained.version.version} ({trained.version.sha256[:12]})")
        return dg.MaterializeResult(metadata=model_metadata(trained))

    return _model


def build_validation_asset(spec: ModelSpec, model: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """``validation_<name>``: evaluates the newest model version and decides its promotion."""

    @dg.asset(
        name=f"validation_{spec.name}",
        group_name=spec.name,
        deps=[model],
        backfill_policy=single_run,
        automation_condition=follow_upstream(require=dg.AssetSelection.assets(model.key)),
        check_specs=[gate_check_spec(f"validation_{spec.name}", spec)],
        kinds={"markdown"},
        description=(
            f"Held-out evaluation of the newest `model_{spec.name}` version on the chronologically last "
            f"{spec.split.test:.0%} of its window (purged, embargo {spec.split.embargo}); gate "
            f"{spec.gate or 'none'}; promotes it only if it passes and beats the promoted version on "
            f"`{spec.primary_metric}`. The report (Markdown with plots) is shown here and written "
            "next to the model."
        ),
    )
    def _validation(context: dg.AssetExecutionContext, storage: AlevorStorage) -> dg.MaterializeResult:
        event = context.instance.get_latest_materialization_event(model.key)
        if event is None or event.asset_materialization is None:
            raise dg.Failure(f"{model.key.to_user_string()} has not been materialized yet")
        meta = event.asset_materialization.metadata
        if "version" not in meta:  # the newest attempt trained nothing: nothing new to validate
            reason = f"{model.key.to_user_string()} trained no version: {meta['skipped'].value}"
            context.log.info(reason)
            return dg.MaterializeResult(metadata={"skipped": reason}, check_results=[gate_not_evaluated(reason)])
        version = int(meta["version"].value)
        validated = validate_version(spec, storage.warehouse, storage.registry, version)
        context.log.info(validated.decision.text)
        return dg.MaterializeResult(metadata=validation_metadata(validated), check_results=[gate_check_result(validated)])

    return _validation


def build_promoted_asset(spec: ModelSpec, validation: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """``promoted_model_<name>``: the version in use, materialized each time it changes."""

    @dg.asset(
        name=f"promoted_model_{spec.name}",
        group_name=spec.name,
        deps=[validation],
        backfill_policy=single_run,
        automation_condition=follow_upstream(require=dg.AssetSelection.assets(validation.key)),
        kinds={"registry"},
        description=(
            f"The `{spec.name}` version in use (none: the spec's fallback scores), read from the registry "
            "after each validation: its metadata names the version and its artifact's sha256, its data "
            "version is the version, so predictions are rescored only when it changes."
        ),
    )
    def _promoted(context: dg.AssetExecutionContext, storage: AlevorStorage) -> dg.MaterializeResult:
        row = storage.registry.promoted(spec.name)
        version = int(row["version"]) if row is not None else None
        recorded = recorded_version(context, context.asset_key)
        context.log.info(f"{spec.name}: promoted version {'unchanged' if version == recorded else 'now'} {version}")
        # Always materialized (never a skipped output, which would skip the predictions downstream
        # in the same run); the data version tells a promotion from a re-check.
        return dg.MaterializeResult(
            metadata={"version": version if version is not None else dg.MetadataValue.null(),
                      "artifact_sha256": row["artifact_sha256"] if row is not None else dg.MetadataValue.null()},
            data_version=dg.DataVersion(f"v{version}" if version is not None else "none"),
        )

    return _promoted


def build_spec_assets(spec: ModelSpec) -> list[dg.AssetsDefinition]:
    """Every asset of one spec: its labels and training rows, drift, model and validation."""
    labels = build_labels_asset(spec)
    training = build_training_set_asset(spec, labels)
    drift = build_drift_asset(spec, training)
    model = build_model_asset(spec, training, drift)
    validation = build_validation_asset(spec, model)
    promoted = build_promoted_asset(spec, validation)
    return [labels, training, drift, model, validation, promoted, build_predictions_asset(spec, promoted)]


def build_specs_assets(specs: Sequence[ModelSpec]) -> list[dg.AssetsDefinition]:
    """The assets of several specs (for a graph of your own specs, e.g. in a notebook or a test)."""
    return [a for spec in specs for a in build_spec_assets(spec)]


MODEL_ASSETS = build_specs_assets(model_specs())
