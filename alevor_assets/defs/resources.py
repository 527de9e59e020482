"""Resources: where data lives, where trades come from, and the pipeline's settings.

Every environment difference lives here, configured from environment variables through
``dagster.EnvVar`` (so the UI shows which variable a value came from and secrets never appear in
run config). Assets only see the interfaces.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from alevor_assets.lib import synthetic
from alevor_assets.lib.bars import threshold_bar_name
from alevor_assets.lib.catalog import Catalog
from alevor_assets.lib.change_detection import file_day_fingerprints, fingerprint_text
from alevor_assets.lib.features import (
    DEFAULT_MAX_GAP,
    DEFAULT_MULTI_TIMEFRAME,
    DEFAULT_RUSH_CHUNKS,
    DEFAULT_SPANS,
    FeatureConfig,
)
from alevor_assets.lib.config import pipeline_settings
from alevor_assets.lib.event_extents import ExtentRules
from alevor_assets.lib.intervals import sort_intervals
from alevor_assets.lib.registry import ModelRegistry
from alevor_assets.lib.sources import SourceError, TradeBatch
from alevor_assets.lib.sources.events import empty_events, events_on, read_events_csv
from alevor_assets.lib.sources.files import FORMATS as FILE_FORMATS
from alevor_assets.lib.sources.files import FileTradeReader
from alevor_assets.lib.sources.postgres import (
    DEFAULT_TOKEN_COLUMNS,
    DEFAULT_TRADE_COLUMNS,
    PostgresLayout,
    PostgresTradeReader,
)
from alevor_assets.lib.warehouse import Warehouse
from alevor_assets.lib.warmup import WarmupNeeds

DEFAULT_HOME = "./.alevor"


def env_or(name: str, default: str) -> str | dg.EnvVar:
    """``EnvVar(name)`` when the variable is set, else the documented default.

    ``EnvVar`` fails a run when its variable is missing, which would make every default an error;
    reading it through this keeps the UI's record of where a set value came from.
    """
    return dg.EnvVar(name) if dg.EnvVar(name).get_value() else default


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
    volume_thresholds: list[float] = Field(default_factory=list, description="Volume bars: base units per bar")
    dollar_thresholds: list[float] = Field(default_factory=list, description="Dollar bars: quote amount per bar")
    feature_intervals: list[str] = Field(description="Intervals that get feature snapshots")
    warmup_bars: int = Field(description="Earlier bars per token read before a partition")
    max_warmup_days: int = Field(description="Upper bound on days read for warm-up")
    spans: list[str] = Field(default_factory=lambda: list(DEFAULT_SPANS), description="Wall-clock windows of the *_<span> features")
    multi_timeframe: list[str] = Field(default_factory=lambda: list(DEFAULT_MULTI_TIMEFRAME), description="Coarser intervals joined as mtf_<interval>_* features")
    rush_chunks: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_RUSH_CHUNKS), description="La Morgia chunk size -> rolling window (chunks)")
    max_gap: str = Field(default=DEFAULT_MAX_GAP, description="Whole days without a trade after which a token's series restarts")
    events_lead: str = Field(default="1m", description="Start-only events: search from this long before the announced start")
    events_peak_window: str = Field(default="5m", description="Start-only events: search the peak this long after the announced start")
    events_min_rise: float = Field(default=0.02, description="Start-only events: a smaller rise to the peak counts as flat")

    def extent_rules(self) -> ExtentRules:
        return ExtentRules.from_settings(
            {"lead": self.events_lead, "peak_window": self.events_peak_window, "min_rise": self.events_min_rise}
        )

    def feature_config(self) -> FeatureConfig:
        missing = set(self.multi_timeframe) - set(self.bar_intervals)
        if missing:
            raise ValueError(f"multi_timeframe intervals {sorted(missing)} are not bar intervals")
        return FeatureConfig(spans=tuple(self.spans), multi_timeframe=tuple(self.multi_timeframe),
                             rush_chunks=dict(self.rush_chunks), max_gap=self.max_gap)

    def bars(self) -> list[str]:
        """Time bar intervals, finest first."""
        return sort_intervals(self.bar_intervals)

    def bar_names(self) -> list[str]:
        """Every bar type the bars asset writes: time bars, then volume and dollar bars."""
        return [
            *self.bars(),
            *(threshold_bar_name("volume", t) for t in sorted(set(self.volume_thresholds))),
            *(threshold_bar_name("dollar", t) for t in sorted(set(self.dollar_thresholds))),
        ]

    def features(self) -> list[str]:
        missing = set(self.feature_intervals) - set(self.bar_intervals)
        if missing:
            raise ValueError(f"feature intervals {sorted(missing)} are not bar intervals")
        return sort_intervals(self.feature_intervals)

    def warmup_needs(self, first_day: date) -> WarmupNeeds:
        """What a day's features read from earlier days (``lib/warmup.py``); nothing exists before
        ``first_day``."""
        return WarmupNeeds.of(self.feature_config(), self.warmup_bars, self.max_warmup_days, first_day)

    @classmethod
    def from_file(cls) -> PipelineSettings:
        raw = pipeline_settings()
        return cls(
            bar_intervals=list(raw["bars"]["intervals"]),
            volume_thresholds=[float(t) for t in raw["bars"].get("volume_thresholds") or []],
            dollar_thresholds=[float(t) for t in raw["bars"].get("dollar_thresholds") or []],
            feature_intervals=list(raw["features"]["intervals"]),
            warmup_bars=int(raw["features"]["warmup_bars"]),
            max_warmup_days=int(raw["features"]["max_warmup_days"]),
            spans=list(raw["features"].get("spans", DEFAULT_SPANS)),
            multi_timeframe=list(raw["features"].get("multi_timeframe", DEFAULT_MULTI_TIMEFRAME)),
            rush_chunks={str(k): int(v) for k, v in (raw["features"].get("rush_chunks") or DEFAULT_RUSH_CHUNKS).items()},
            max_gap=str(raw["features"].get("max_gap", DEFAULT_MAX_GAP)),
            **_event_settings(raw.get("events") or {}),
        )


def _event_settings(raw: dict) -> dict:
    rules = ExtentRules.from_settings(raw)  # checks the keys and values when the code location loads
    return {"events_lead": str(raw.get("lead", "1m")), "events_peak_window": str(raw.get("peak_window", "5m")),
            "events_min_rise": rules.min_rise}


class TradeSource(dg.ConfigurableResource):
    """Where trades, token metadata and labelled events come from, one UTC day at a time.

    ``read_trades`` returns the day's trades (``raw_trades`` columns plus ``_origin``: file and
    line, or table and id) and the rows that could not be converted, each with its rule.
    """

    events: str = Field(
        default="",
        description="Labelled events: a CSV path, or table:<name> in the trades database; empty "
        "means the source's own (the synthetic ground truth) or none",
    )

    def read_trades(self, day: date) -> TradeBatch:
        raise NotImplementedError

    def tokens(self, day: date) -> pl.DataFrame:
        raise NotImplementedError

    def own_events(self, day: date) -> pl.DataFrame:
        return empty_events()

    def events_database_url(self) -> str | None:
        return None

    def day_fingerprints(self, lookback_days: int) -> dict[str, str] | None:
        """Per UTC day (ISO string), a fingerprint that changes whenever that day's trades do;
        ``None`` for a source that never changes."""
        return None

    def labelled_events(self, day: date, margin: timedelta = timedelta(0)) -> pl.DataFrame:
        """Events overlapping ``day`` widened by ``margin`` (start-only events have a null end)."""
        if not self.events:
            return self.own_events(day)
        return events_on(_all_events(self.events, self.events_database_url()), day, margin)

    def describe(self) -> str:
        return type(self).__name__


@lru_cache(maxsize=8)
def _events_cached(spec: str, url: str | None, stamp: tuple[int, int] | None) -> pl.DataFrame:
    if spec.startswith("table:"):
        if not url:
            raise SourceError(f"ALEVOR_EVENTS={spec} needs a database: set ALEVOR_PG_URL")
        return PostgresTradeReader(url).events_table(spec.removeprefix("table:"))
    return read_events_csv(spec)


def _all_events(spec: str, url: str | None) -> pl.DataFrame:
    # Keyed on the file's mtime and size so an edited events file is read again.
    path = Path(spec)
    stamp = (path.stat().st_mtime_ns, path.stat().st_size) if not spec.startswith("table:") and path.exists() else None
    return _events_cached(spec, url, stamp)


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

    def read_trades(self, day: date) -> TradeBatch:
        return TradeBatch(synthetic.trades_for_day(self.config(), day), TradeBatch.empty().rejected)

    def tokens(self, day: date) -> pl.DataFrame:
        return synthetic.tokens_for_day(self.config(), day)

    def own_events(self, day: date) -> pl.DataFrame:
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
            events=env_or("ALEVOR_EVENTS", ""),
        )


@lru_cache(maxsize=8)
def _file_reader(pattern: str, fmt: str) -> FileTradeReader:
    # One reader per process keeps its per-file statistics across the days of a backfill.
    return FileTradeReader(pattern, fmt)


class FilesSource(TradeSource):
    """Trade files matching a glob: CSV (plain, gzip or zipped) or Parquet, in the canonical
    columns, the ccxt trades export or Binance's aggTrades format."""

    pattern: str = Field(description="Glob of trade files (ALEVOR_FILES)")
    format: str = Field(default="auto", description="auto, canonical, ccxt or binance_aggtrades")
    pg_url: str = Field(default="", description="Database for events given as table:<name>")

    def reader(self) -> FileTradeReader:
        return _file_reader(self.pattern, self.format)

    def read_trades(self, day: date) -> TradeBatch:
        return self.reader().read_day(day)

    def tokens(self, day: date) -> pl.DataFrame:
        return self.reader().tokens(day)

    def events_database_url(self) -> str | None:
        return self.pg_url or None

    def day_fingerprints(self, lookback_days: int) -> dict[str, str] | None:
        reader = self.reader()
        files = reader.fingerprint()
        return file_day_fingerprints(files, {path: reader.file_days(path) for path in files})

    def describe(self) -> str:
        return f"files({self.pattern}, format={self.format})"


class PostgresSource(TradeSource):
    """A PostgreSQL ``Token``/``Trade`` database (names configurable in pipeline.yaml)."""

    url: str = Field(description="libpq URL of the trades database (ALEVOR_PG_URL)")
    schema_name: str = Field(default="public")
    token_table: str = Field(default="Token")
    trade_table: str = Field(default="Trade")
    token_columns: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_TOKEN_COLUMNS))
    trade_columns: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_TRADE_COLUMNS))
    token_key: str = Field(default="address", description="Token column that becomes `token`")
    naive_timestamps: str = Field(default="error", description="'utc' reads timestamp-without-zone columns as UTC")
    chunk_rows: int = Field(default=200_000, description="Rows per keyset page")
    retries: int = Field(default=5, description="Attempts before a connection failure fails the run")

    def reader(self) -> PostgresTradeReader:
        layout = PostgresLayout(
            schema=self.schema_name, token_table=self.token_table, trade_table=self.trade_table,
            token_columns=self.token_columns, trade_columns=self.trade_columns, token_key=self.token_key,
            naive_timestamps=self.naive_timestamps,
        )
        return PostgresTradeReader(self.url, layout, chunk_rows=self.chunk_rows, retries=self.retries)

    def read_trades(self, day: date) -> TradeBatch:
        return self.reader().read_day(day)

    def tokens(self, day: date) -> pl.DataFrame:
        return self.reader().tokens(day)

    def events_database_url(self) -> str | None:
        return self.url

    def day_fingerprints(self, lookback_days: int) -> dict[str, str] | None:
        reader = self.reader()
        newest = reader.newest_trade_day()
        if newest is None:
            return {}
        prints = reader.day_fingerprints(newest - timedelta(days=lookback_days), newest)
        return {day.isoformat(): fingerprint_text(list(fp)) for day, fp in prints.items()}

    def describe(self) -> str:
        return f"postgres({self.reader().where}, {self.schema_name}.{self.trade_table})"

    @classmethod
    def from_file(cls, url: str | dg.EnvVar, events: str | dg.EnvVar) -> PostgresSource:
        raw = pipeline_settings().get("postgres") or {}
        return cls(
            url=url,
            events=events,
            schema_name=str(raw.get("schema", "public")),
            token_table=str(raw.get("token_table", "Token")),
            trade_table=str(raw.get("trade_table", "Trade")),
            token_columns={**DEFAULT_TOKEN_COLUMNS, **(raw.get("token_columns") or {})},
            trade_columns={**DEFAULT_TRADE_COLUMNS, **(raw.get("trade_columns") or {})},
            token_key=str(raw.get("token_key", "address")),
            naive_timestamps=str(raw.get("naive_timestamps", "error")),
            chunk_rows=int(raw.get("chunk_rows", 200_000)),
            retries=int(raw.get("connect_retries", 5)),
        )


def _require_env(name: str, why: str) -> dg.EnvVar:
    if not dg.EnvVar(name).get_value():
        raise ValueError(f"{why} needs {name} to be set")
    return dg.EnvVar(name)


def build_source() -> TradeSource:
    """The trade source ``ALEVOR_SOURCE`` names. The kind picks the resource's class, which is part
    of the code location's structure, so it is read when the code location loads; every value a
    source then uses is an ``EnvVar`` in its config (the UI shows where it came from)."""
    from alevor_assets.defs.partitions import start_date

    kind = dg.EnvVar("ALEVOR_SOURCE").get_value("synthetic")
    events = env_or("ALEVOR_EVENTS", "")
    if kind == "synthetic":
        return SyntheticSource.from_file(start_date())
    if kind == "files":
        fmt = dg.EnvVar("ALEVOR_FILES_FORMAT").get_value("auto")
        if fmt not in FILE_FORMATS:
            raise ValueError(f"ALEVOR_FILES_FORMAT must be one of {', '.join(FILE_FORMATS)}; got {fmt!r}")
        return FilesSource(
            pattern=_require_env("ALEVOR_FILES", "ALEVOR_SOURCE=files"),
            format=env_or("ALEVOR_FILES_FORMAT", "auto"),
            pg_url=env_or("ALEVOR_PG_URL", ""),
            events=events,
        )
    if kind == "postgres":
        return PostgresSource.from_file(_require_env("ALEVOR_PG_URL", "ALEVOR_SOURCE=postgres"), events)
    raise ValueError(f"ALEVOR_SOURCE must be one of synthetic, files, postgres; got {kind!r}")


def build_resources() -> dict[str, object]:
    return {
        "storage": AlevorStorage(home=env_or("ALEVOR_HOME", DEFAULT_HOME)),
        "settings": PipelineSettings.from_file(),
        "source": build_source(),
    }
