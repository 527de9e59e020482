"""Fallback rules: what a spec's predictions are when no model can serve.

A spec declares one (``fallback: {rule: pump_rule, params: {...}}``, or ``fallback: none``, the
default). When the spec has no promoted version, its promoted artifact fails its integrity check,
or the features the model needs are missing, the predictions come from this rule instead, every
row marked ``source = fallback`` with the reason; ``none`` gives rows with a null score, so a desk
sees that nothing is scoring rather than a silent gap. A rule is a dataclass registered like label
strategies and trainers, so a team can add its own with ``@register_fallback_rule``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import polars as pl

from alevor_assets.lib.plugins import Registry

NONE = "none"


class FallbackRule:
    """Base class; subclasses are dataclasses registered with ``@register_fallback_rule``."""

    name: ClassVar[str]
    task: ClassVar[str]  # the spec task it can stand in for

    def needs(self) -> list[str]:
        """Feature columns the rule reads."""
        return []

    def score(self, features: pl.DataFrame) -> pl.Series:
        """One score per row (a probability-like score in [0, 1] for classification, a value for
        regression); null where the rule cannot say."""
        raise NotImplementedError  # pragma: no cover - interface


_RULES: Registry[FallbackRule] = Registry("fallback rule")
R = TypeVar("R", bound=type[FallbackRule])


def register_fallback_rule(cls: R) -> R:
    """Class decorator: make a fallback rule available to model specs under ``cls.name``."""
    return _RULES.register(cls)


def fallback_rules() -> dict[str, type[FallbackRule]]:
    return _RULES.all()


def make_fallback_rule(name: str, params: dict[str, Any] | None = None) -> FallbackRule | None:
    """The rule ``name`` with ``params``; ``None`` for ``"none"``."""
    return None if name == NONE else _RULES.make(name, params)


@register_fallback_rule
@dataclass(frozen=True)
class PumpRule(FallbackRule):
    """The classic pump rule: 1 when the price rose by at least ``min_return`` over the window of
    ``return_feature`` AND volume spiked at least ``min_volume_z`` standard deviations above its
    recent mean (``volume_feature``); else 0. Null when either feature is null (warm-up)."""

    name: ClassVar[str] = "pump_rule"
    task: ClassVar[str] = "classification"
    return_feature: str = "return_5m"
    min_return: float = 0.05
    volume_feature: str = "volume_zscore_15"
    min_volume_z: float = 3.0

    def needs(self) -> list[str]:
        return [self.return_feature, self.volume_feature]

    def score(self, features: pl.DataFrame) -> pl.Series:
        hit = (pl.col(self.return_feature) >= self.min_return) & (pl.col(self.volume_feature) >= self.min_volume_z)
        return features.select(hit.cast(pl.Float64).alias("score")).to_series()


@register_fallback_rule
@dataclass(frozen=True)
class Constant(FallbackRule):
    """The same value for every row (e.g. 0: no expected return, or a friction estimate)."""

    name: ClassVar[str] = "constant"
    task: ClassVar[str] = "regression"
    value: float = 0.0

    def score(self, features: pl.DataFrame) -> pl.Series:
        return pl.Series("score", [float(self.value)] * features.height, dtype=pl.Float64)
