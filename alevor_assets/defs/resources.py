"""Resources: where data lives, where trades come from, and the pipeline's settings.

Every environment difference lives here, configured from environment variables through
``dagster.EnvVar`` (so the UI shows which variable a value came from and secrets never appear in
run config). Assets only see the interfaces.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from alevor_assets.lib import synthetic
from alevor_assets.lib.catalog import Catalog
from alevor_assets.lib.config import pipeline_settings
from alevor_assets.lib.intervals import interval_us, sort_intervals
from alevor_assets.lib.registry import ModelRegistry
from alevor_assets.lib.warehouse import Warehouse

DEFAULT_HOME = "./.alevor"


def env_or(name: str, default: str) -> str | dg.EnvVar:
    """``EnvVar(name)`` when the variable is set, else the documented default.

    ``EnvVar`` fails a run when its variable is missing, which would make every default an error;
    reading it through this keeps the UI's record of where a set value came from.
    """
    return dg.EnvVar(name) if os.environ.get(name) else default


class AlevorStorage(dg.ConfigurableResource):
    """``$ALEVOR_HOME``: the Parquet warehouse, the DuckDB catalog, models and quarantined rows."""

    home: str = Field(default=DEFAULT_HOME, description="Root directory for everything a run writes")

    @property
    def root(self) -> Path:
        return Path(self.home).expanduser().resolve()

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.root / "warehouse")

    @property
    def catalog(self) -> Catalog:
        return Catalog(self.root / "alevor.duckdb")

    @property
    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.root / "models", self.catalog)

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"


class PipelineSettings(dg.ConfigurableResource):
    """Versioned settings from ``alevor_assets/pipeline.yaml`` (overridable per run)."""

    bar_intervals: list[str] = Field(description="Time bar intervals the bars asset writes")
    feature_intervals: list[str] = Field(description="Intervals that get feature snapshots")
    warmup_bars: int = Field(description="Earlier bars per token read before a partition")
    max_warmup_days: int = Field(description="Upper bound on days read for warm-up")

    def bars(self) -> list[str]:
        return sort_intervals(self.bar_intervals)

    def features(self) -> list[str]:
        missing = set(self.feature_intervals) - set(self.bar_intervals)
        if missing:
            raise ValueError(f"feature intervals {sorted(missing)} are not bar intervals")
        return sort_intervals(self.feature_intervals)

    def warmup_days(self, interval: str) -> int:
        """Whole days of earlier bars to read so each token has ``warmup_bars`` of history (at
        least one day, so a partition equals a batch over the previous day and itself)."""
        needed_us = self.warmup_bars * interval_us(interval)
        days = -(-needed_us // 86_400_000_000)
        return int(min(max(days, 1), self.max_warmup_days))

    @classmethod
    def from_file(cls) -> PipelineSettings:
        raw = pipeline_settings()
        return cls(
            bar_intervals=list(raw["bars"]["intervals"]),
            feature_intervals=list(raw["features"]["intervals"]),
            warmup_bars=int(raw["features"]["warmup_bars"]),
            max_warmup_days=int(raw["features"]["max_warmup_days"]),
        )


class TradeSource(dg.ConfigurableResource):
    """Where trades, token metadata and labelled events come from.

    Every method returns one UTC day. Trades have the ``raw_trades`` columns and may carry an
    ``_origin`` column (file and line, table and id) that failed checks quote.
    """

    def tokens(self, day: date) -> pl.DataFrame:
        raise NotImplementedError

    def trades(self, day: date) -> pl.DataFrame:
        raise NotImplementedError

    def events(self, day: date) -> pl.DataFrame:
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__


class SyntheticSource(TradeSource):
    """Deterministic synthetic market (the default): realistic trades for many tokens with planted
    pump-and-dump episodes whose ground truth serves as labelled events."""

    seed: int = Field(description="Random seed; the same seed always gives the same market")
    tokens_count: int = Field(description="Number of tokens (tens by default, thousands work)")
    trades_per_token_day: float = Field(description="Mean trades per token per day")
    new_token_fraction: float = Field(description="Share of tokens launched after the start date")
    launch_window_days: int = Field(description="New tokens launch within this many days of the start")
    pumps_per_token_day: float = Field(description="Mean pump-and-dump episodes per token per day")
    launch_start: str = Field(description="First day new tokens can launch (ISO date)")

    def config(self) -> synthetic.SyntheticConfig:
        return synthetic.SyntheticConfig(
            seed=self.seed,
            tokens=self.tokens_count,
            trades_per_token_day=self.trades_per_token_day,
            new_token_fraction=self.new_token_fraction,
            launch_start=date.fromisoformat(self.launch_start),
            launch_window_days=self.launch_window_days,
            pumps_per_token_day=self.pumps_per_token_day,
        )

    def tokens(self, day: date) -> pl.DataFrame:
        return synthetic.tokens_for_day(self.config(), day)

    def trades(self, day: date) -> pl.DataFrame:
        return synthetic.trades_for_day(self.config(), day)

    def events(self, day: date) -> pl.DataFrame:
        return synthetic.events_for_day(self.config(), day)

    def describe(self) -> str:
        return f"synthetic(seed={self.seed}, tokens={self.tokens_count})"

    @classmethod
    def from_file(cls, launch_start: date) -> SyntheticSource:
        raw = pipeline_settings()["synthetic"]
        return cls(
            seed=int(raw["seed"]),
            tokens_count=int(raw["tokens"]),
            trades_per_token_day=float(raw["trades_per_token_day"]),
            new_token_fraction=float(raw["new_token_fraction"]),
            launch_window_days=int(raw["launch_window_days"]),
            pumps_per_token_day=float(raw["pumps_per_token_day"]),
            launch_start=launch_start.isoformat(),
        )


def build_source() -> TradeSource:
    from alevor_assets.defs.partitions import start_date

    kind = os.environ.get("ALEVOR_SOURCE", "synthetic")
    if kind == "synthetic":
        return SyntheticSource.from_file(start_date())
    raise ValueError(f"ALEVOR_SOURCE must be one of synthetic, files, postgres; got {kind!r}")


def build_resources() -> dict[str, object]:
    return {
        "storage": AlevorStorage(home=env_or("ALEVOR_HOME", DEFAULT_HOME)),
        "settings": PipelineSettings.from_file(),
        "source": build_source(),
    }
