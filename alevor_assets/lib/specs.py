"""Model specs: the YAML files in ``alevor_assets/specs/`` that declare each model.

A spec names everything a model needs (interval, label strategy, trainer, features, training
window, split and gate) so a user adds a model by adding a file. :func:`load_spec` checks a spec
fully, with messages that name the file and the field, before any asset is built from it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from alevor_assets.lib.config import SPECS_DIR, pipeline_settings, user_spec_dirs
from alevor_assets.lib.detection import DetectionRules
from alevor_assets.lib.intervals import duration_us, interval_us
from alevor_assets.lib.fallback import FallbackRule, make_fallback_rule
from alevor_assets.lib.labels import LabelStrategy, make_label_strategy
from alevor_assets.lib.thresholds import ThresholdRule
from alevor_assets.lib.training import make_trainer

_NAME_OK = set("abcdefghijklmnopqrstuvwxyz0123456789_")

TRADING_METRICS = ("profit_factor", "sharpe", "hit_rate", "total_return", "directional_accuracy")
CLASSIFICATION_METRICS = (
    "roc_auc", "pr_auc", "f1", "precision", "recall", "event_recall", "event_recall_timely", "accuracy", *TRADING_METRICS,
)
REGRESSION_METRICS = ("ic", "neg_mae", "neg_rmse", "r2", *TRADING_METRICS)
# Gate keys: min_<metric> or max_<metric>.
KNOWN_GATE_METRICS = set(CLASSIFICATION_METRICS) | set(REGRESSION_METRICS) | {
    "mae", "rmse", "max_drawdown", "trades",
    "detection_delay_s", "detection_delay_max_s", "false_alerts", "false_alerts_per_token_day",
}
RENAMED_GATE_METRICS = {"false_alarms_per_day": "false_alerts_per_token_day"}


@dataclass(frozen=True)
class LabelSpec:
    strategy: str
    params: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # the label set's name in the warehouse; defaults to the strategy

    @property
    def set_name(self) -> str:
        return self.name or self.strategy

    def build(self) -> LabelStrategy:
        return make_label_strategy(self.strategy, self.params)


@dataclass(frozen=True)
class TrainerSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SplitSpec:
    train: float = 0.70
    validation: float = 0.15
    test: float = 0.15
    embargo: str = "0s"

    @property
    def embargo_us(self) -> int:
        return 0 if self.embargo in ("0", "0s", "", None) else duration_us(self.embargo)


@dataclass(frozen=True)
class BacktestSpec:
    """How trading metrics are measured for tradable label strategies."""

    fee_bps: float = 10.0
    slippage_bps: float = 5.0
    risk_fraction: float = 0.1
    # Classifiers trade when the score reaches this (default: the threshold of the spec's rule).
    threshold: float | None = None
    # long_only: a positive signal buys; long_short: a negative one sells short.
    sides: str = "long_short"


@dataclass(frozen=True)
class ServingSpec:
    """How a spec's promoted model serves (``serving:``), and what stands in when it cannot."""

    fallback: str = "none"  # a registered fallback rule, or "none"
    fallback_params: dict[str, Any] = field(default_factory=dict)
    # When a new version is promoted, the newest this many days of predictions are rescored.
    rescore_days: int = 3
    # Detectors: how many of a row's top contributing features an alert lists.
    alert_top_features: int = 3


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    interval: str
    label: LabelSpec
    trainer: TrainerSpec
    features_include: tuple[str, ...] | None = None
    features_exclude: tuple[str, ...] = ()
    max_token_age_hours: float | None = None
    window_days: int = 30
    window_end: date | None = None
    split: SplitSpec = SplitSpec()
    gate: dict[str, float] = field(default_factory=dict)
    primary_metric: str = "pr_auc"
    drift_psi_threshold: float = 0.25
    backtest: BacktestSpec = BacktestSpec()
    walk_forward_folds: int = 3
    retrain_cron: str | None = None
    serving: ServingSpec = ServingSpec()
    # Detectors: how scores become alerts and meet events; every classifier: its threshold rule.
    alerts: DetectionRules = DetectionRules()
    threshold: ThresholdRule = ThresholdRule()
    path: str = ""

    @property
    def task(self) -> str:
        return self.label.build().task

    def fallback_rule(self) -> FallbackRule | None:
        """The declared fallback rule (``None`` for ``none``)."""
        return make_fallback_rule(self.serving.fallback, self.serving.fallback_params)

    @property
    def detects_events(self) -> bool:
        """Whether the spec is a detector (its positive labels mark episodes to alert on)."""
        return self.label.build().detects_events

    @property
    def predictions_asset(self) -> str:
        return f"predictions_{self.name}"

    @property
    def needs_token_age(self) -> bool:
        """Whether the spec needs tokens' creation times (its label strategy or its age filter)."""
        return self.label.build().needs_token_age or self.max_token_age_hours is not None

    @property
    def labels_asset(self) -> str:
        return f"labels_{self.name}"

    @property
    def training_set_asset(self) -> str:
        return f"training_set_{self.name}"

    @property
    def shipped(self) -> bool:
        """Whether the spec is one of the package's own (not from ALEVOR_SPECS)."""
        return Path(self.path).resolve().parent == SPECS_DIR.resolve() if self.path else False

    def raw(self) -> dict[str, Any]:
        """The spec as written, for metadata."""
        return yaml.safe_load(Path(self.path).read_text()) if self.path else {}


class SpecError(ValueError):
    pass


def _spec_mapping(path: Path) -> dict:
    """A spec file's YAML, which must be a mapping."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a model spec must be a mapping")
    return raw


def load_spec(path: str | Path) -> ModelSpec:
    path = Path(path)
    return parse_spec(_spec_mapping(path), str(path))


def parse_spec(raw: dict[str, Any], where: str = "<spec>") -> ModelSpec:
    def need(key: str, kind: type | tuple[type, ...]) -> Any:
        if key not in raw:
            raise SpecError(f"{where}: missing required field '{key}'")
        if not isinstance(raw[key], kind):
            raise SpecError(f"{where}: field '{key}' must be {kind}")
        return raw[key]

    allowed = {
        "name", "description", "interval", "label", "trainer", "features", "filters", "window",
        "split", "gate", "primary_metric", "drift", "backtest", "validation", "retrain", "serving", "alerts",
        "threshold",
    }
    unknown = set(raw) - allowed
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    name = need("name", str)
    if not name or set(name) - _NAME_OK or name[0].isdigit():
        raise SpecError(f"{where}: name {name!r} must be lower_snake_case (letters, digits, _)")
    interval = need("interval", str)
    try:
        interval_us(interval)
    except ValueError as exc:
        raise SpecError(f"{where}: {exc}") from exc
    label_raw = need("label", dict)
    label = LabelSpec(
        strategy=str(label_raw.get("strategy", "")),
        params=dict(label_raw.get("params") or {}),
        name=str(label_raw.get("name", "")),
    )
    try:
        strategy = label.build()
    except (ValueError, TypeError) as exc:
        raise SpecError(f"{where}: label: {exc}") from exc
    trainer_raw = need("trainer", dict)
    trainer = TrainerSpec(name=str(trainer_raw.get("name", "")), params=dict(trainer_raw.get("params") or {}))
    try:
        trainer_obj = make_trainer(trainer.name, trainer.params)
    except (ValueError, TypeError) as exc:
        raise SpecError(f"{where}: trainer: {exc}") from exc
    if trainer_obj.task != strategy.task:
        raise SpecError(
            f"{where}: trainer {trainer.name!r} is for {trainer_obj.task} but label strategy "
            f"{label.strategy!r} produces {strategy.task} labels"
        )
    feats = raw.get("features") or {}
    include = feats.get("include", "all")
    filters = raw.get("filters") or {}
    window = raw.get("window") or {}
    split_raw = raw.get("split") or {}
    split = SplitSpec(
        train=float(split_raw.get("train", 0.70)),
        validation=float(split_raw.get("validation", 0.15)),
        test=float(split_raw.get("test", 0.15)),
        embargo=str(split_raw.get("embargo", "0s")),
    )
    if abs(split.train + split.validation + split.test - 1.0) > 1e-9 or min(split.train, split.validation, split.test) <= 0:
        raise SpecError(f"{where}: split fractions must be positive and sum to 1")
    split.embargo_us  # noqa: B018 - validates the duration
    gate = {str(k): float(v) for k, v in (raw.get("gate") or {}).items()}
    for key in gate:
        prefix, _, metric = key.partition("_")
        if metric in RENAMED_GATE_METRICS:
            raise SpecError(
                f"{where}: gate key {key!r} is now {prefix}_{RENAMED_GATE_METRICS[metric]} (false alerts are "
                "counted per token-day with data, not per calendar day)"
            )
        if prefix not in ("min", "max") or metric not in KNOWN_GATE_METRICS:
            raise SpecError(f"{where}: gate key {key!r} must be min_<metric> or max_<metric> with metric in {sorted(KNOWN_GATE_METRICS)}")
    primary = str(raw.get("primary_metric", "pr_auc" if strategy.task == "classification" else "ic"))
    valid_primary = CLASSIFICATION_METRICS if strategy.task == "classification" else REGRESSION_METRICS
    if primary not in valid_primary:
        raise SpecError(f"{where}: primary_metric {primary!r} must be one of {valid_primary}")
    end = window.get("end")
    bt = raw.get("backtest") or {}
    unknown_bt = set(bt) - {"fee_bps", "slippage_bps", "risk_fraction", "threshold", "sides"}
    if unknown_bt:
        raise SpecError(f"{where}: unknown backtest field(s) {sorted(unknown_bt)}")
    backtest = BacktestSpec(
        fee_bps=float(bt.get("fee_bps", 10.0)),
        slippage_bps=float(bt.get("slippage_bps", 5.0)),
        risk_fraction=float(bt.get("risk_fraction", 0.1)),
        threshold=float(bt["threshold"]) if bt.get("threshold") is not None else None,
        sides=str(bt.get("sides", "long_short")),
    )
    if backtest.sides not in ("long_only", "long_short"):
        raise SpecError(f"{where}: backtest.sides must be long_only or long_short")
    serving = _serving(raw.get("serving") or {}, strategy.task, where)
    detector = bool(getattr(strategy, "detects_events", False))
    if raw.get("alerts") and not detector:
        raise SpecError(f"{where}: alerts: only for detectors (label strategies that detect events)")
    try:
        alerts = DetectionRules.from_spec(raw.get("alerts"))
        threshold = ThresholdRule.from_spec(raw.get("threshold"), detector)
    except ValueError as exc:
        raise SpecError(f"{where}: {exc}") from exc
    folds = int((raw.get("validation") or {}).get("walk_forward_folds", 3))
    if folds < 0:
        raise SpecError(f"{where}: validation.walk_forward_folds must be >= 0")
    return ModelSpec(
        name=name,
        description=str(raw.get("description", "")).strip(),
        interval=interval,
        label=label,
        trainer=trainer,
        features_include=None if include in (None, "all") else tuple(include),
        features_exclude=tuple(feats.get("exclude") or ()),
        max_token_age_hours=(float(filters["max_token_age_hours"]) if "max_token_age_hours" in filters else None),
        window_days=int(window.get("days", 30)),
        window_end=date.fromisoformat(str(end)) if end else None,
        split=split,
        gate=gate,
        primary_metric=primary,
        drift_psi_threshold=float((raw.get("drift") or {}).get("psi_threshold", 0.25)),
        backtest=backtest,
        walk_forward_folds=folds,
        retrain_cron=(raw.get("retrain") or {}).get("cron"),
        serving=serving,
        alerts=alerts,
        threshold=threshold,
        path=where,
    )


def _serving(raw: dict[str, Any], task: str, where: str) -> ServingSpec:
    unknown = set(raw) - {"fallback", "rescore_days", "alert_top_features"}
    if unknown:
        raise SpecError(f"{where}: unknown serving field(s) {sorted(unknown)}")
    fb = raw.get("fallback", "none")
    rule, params = (fb, {}) if isinstance(fb, str) else (str((fb or {}).get("rule", "")), dict((fb or {}).get("params") or {}))
    try:
        made = make_fallback_rule(rule, params)
    except (ValueError, TypeError) as exc:
        raise SpecError(f"{where}: serving.fallback: {exc}") from exc
    if made is not None and made.task != task:
        raise SpecError(f"{where}: serving.fallback {rule!r} stands in for {made.task} models, this spec is {task}")
    spec = ServingSpec(fallback=rule, fallback_params=params, rescore_days=int(raw.get("rescore_days", 3)),
                       alert_top_features=int(raw.get("alert_top_features", 3)))
    if spec.rescore_days < 0 or spec.alert_top_features < 0:
        raise SpecError(f"{where}: serving.rescore_days and serving.alert_top_features must be >= 0")
    return spec


def load_specs(directory: str | Path) -> list[ModelSpec]:
    """Every ``*.yaml`` spec in ``directory``, sorted by name; names must be unique."""
    return _by_name([load_spec(p) for p in sorted(Path(directory).glob("*.yaml"))], {})


def _by_name(specs: list[ModelSpec], seen: dict[str, str]) -> list[ModelSpec]:
    for spec in specs:
        if spec.name in seen:
            raise SpecError(f"{spec.path}: spec name {spec.name!r} already used by {seen[spec.name]}")
        seen[spec.name] = spec.path
    return sorted(specs, key=lambda s: s.name)


@dataclass(frozen=True)
class SpecSource:
    """Where the served specs come from: what was added, replaced or switched off."""

    specs: tuple[ModelSpec, ...]
    switched_off: dict[str, str]  # spec name -> the user file that switched it off


def _user_file(path: Path) -> ModelSpec | str:
    """A user spec file: a whole spec, or ``{name: X, enabled: false}`` switching X off (returns X)."""
    raw = _spec_mapping(path)
    enabled = raw.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise SpecError(f"{path}: field 'enabled' must be true or false")
    if not enabled:
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise SpecError(f"{path}: a file with 'enabled: false' must name the spec it switches off")
        return name
    return parse_spec(raw, str(path))


def resolve_specs(shipped_dir: str | Path, user_dirs: Sequence[str | Path]) -> SpecSource:
    """The shipped specs, overlaid by every ``*.yaml`` in ``user_dirs`` (in order): a user spec adds
    a model or replaces the shipped spec of the same name; ``enabled: false`` switches one off."""
    by_name = {s.name: s for s in load_specs(shipped_dir)}
    switched_off: dict[str, str] = {}
    for directory in user_dirs:
        folder = Path(directory).expanduser()
        if not folder.is_dir():
            raise SpecError(f"ALEVOR_SPECS: {folder} is not a folder of spec YAML files")
        seen: dict[str, str] = {}
        for path in sorted(folder.glob("*.yaml")):
            item = _user_file(path)
            name = item if isinstance(item, str) else item.name
            if name in seen:
                raise SpecError(f"{path}: spec name {name!r} already used by {seen[name]}")
            seen[name] = str(path)
            if isinstance(item, str):
                if item not in by_name:
                    raise SpecError(f"{path}: switches off {item!r}, but no such spec is shipped or defined")
                del by_name[item]
                switched_off[item] = str(path)
            else:
                by_name[name] = item
                switched_off.pop(name, None)
    return SpecSource(tuple(sorted(by_name.values(), key=lambda s: s.name)), switched_off)


@lru_cache(maxsize=1)
def spec_source() -> SpecSource:
    """The specs this code location serves: ``alevor_assets/specs/*.yaml`` overlaid by the folders
    in ``ALEVOR_SPECS``. Modules listed under ``plugins:`` in pipeline.yaml are imported first, so
    specs can name the label strategies and trainers registered there."""
    for module in pipeline_settings().get("plugins") or []:
        importlib.import_module(module)
    return resolve_specs(SPECS_DIR, user_spec_dirs())


def model_specs() -> tuple[ModelSpec, ...]:
    """The specs this code location serves (see :func:`spec_source`)."""
    return spec_source().specs
