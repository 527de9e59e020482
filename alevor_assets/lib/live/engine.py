"""One live tick: new trades in, closed bars scored, alerts out.

Per tick the engine closes the bars the clock has passed (``LiveMarket``), computes the features
of the newly closed bars with the feature code over a tail of each active token's series (resumed
where the previous tick left it, so a tick's work follows the new trades, not the day),
scores them with ``lib/serving.predictions`` (the promoted model, or the spec's fallback, exactly
as the ``predictions_<spec>`` assets do) and turns the scores into alerts with
``lib/alerts.detector_alerts`` and the spec's cooldown, carried across ticks by the last alert of
each token. Alerts are written before the scored-until mark moves, and an alert already written
(same spec, token and bar) is never written again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import polars as pl

from alevor_assets.lib.alerts import ALERT_SCHEMA, detector_alerts
from alevor_assets.lib.day_builds import explain_alerts
from alevor_assets.lib.intervals import day_start_us, interval_timedelta
from alevor_assets.lib.live.market import LiveMarket
from alevor_assets.lib.live.store import LIVE_ALERT_SCHEMA, LiveStore, alert_ids
from alevor_assets.lib.registry import ModelRegistry
from alevor_assets.lib.serving import PREDICTION_SCHEMA, ServingModel, load_serving_model, predictions
from alevor_assets.lib.specs import ModelSpec
from alevor_assets.lib.warehouse import Warehouse

LIVE = "live"


@dataclass
class TickResult:
    trades: int = 0
    scored: dict[str, tuple[int, int]] = field(default_factory=dict)  # interval -> (from, to) bar ends
    predictions: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=PREDICTION_SCHEMA))
    alerts: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=LIVE_ALERT_SCHEMA))
    seconds: float = 0.0


class LiveEngine:
    def __init__(self, market: LiveMarket, specs: Sequence[ModelSpec], registry: ModelRegistry, store: LiveStore,
                 late_commit: timedelta, tokens_of: Callable[[], pl.DataFrame | None] | None = None,
                 wh: Warehouse | None = None):
        self.market, self.specs, self.registry, self.store = market, list(specs), registry, store
        self.late_us = int(late_commit / timedelta(microseconds=1))
        self.tokens_of, self.tokens_meta, self._known = tokens_of, None, 0
        start = day_start_us(market.day)
        state = store.load_state()
        if state is not None and state.get("day") != market.day.isoformat():
            state = None  # another live day: start over
        saved = (state or {}).get("scored_until", {})
        self.scored_until = {s.interval: int(saved.get(s.interval, start)) for s in self.specs}
        written = store.alerts()
        self.written = set(alert_ids(written))
        self.last_alert: dict[tuple[str, str], int] = {}
        self._remember(written)
        if wh is not None:  # episodes alerted by the batch path the day before
            path = wh.partition_path("alerts", market.day - timedelta(days=1))
            if path.exists():
                self._remember(pl.read_parquet(path).filter(pl.col("alerted_at").dt.epoch("us") <= start))
        self.max_ts_us: int | None = None
        self._models: dict[str, ServingModel] = {}

    def _remember(self, alerts: pl.DataFrame) -> None:
        for spec, token, at in alerts.select("spec", "token", pl.col("alerted_at").dt.epoch("us")).iter_rows():
            key = (spec, token)
            self.last_alert[key] = max(at, self.last_alert.get(key, at))

    def _loader(self, spec: ModelSpec) -> Callable[[], ServingModel]:
        def load() -> ServingModel:
            promoted = self.registry.promoted(spec.name)
            if promoted is None:
                raise LookupError(f"{spec.name} has no promoted version yet")
            cached = self._models.get(spec.name)
            if cached is None or cached.version != promoted["version"]:
                cached = self._models[spec.name] = load_serving_model(self.registry, spec.name, promoted["version"])
            return cached
        return load

    def tick(self, trades: pl.DataFrame, wall_us: int | None = None) -> TickResult:
        """Take the trades read since the last tick and score every bar that closed: the clock is
        the newest trade's time (or ``wall_us``, the wall clock, when later) minus the late-commit
        allowance."""
        began = time.perf_counter()
        result = TickResult(trades=trades.height)
        self.market.add(trades)
        if trades.height:
            self.max_ts_us = max(self.max_ts_us or 0, int(trades["ts"].dt.epoch("us").max()))
        clocks = [t - self.late_us for t in (self.max_ts_us, wall_us) if t is not None]
        if not clocks:
            return result
        self.market.close(max(clocks))
        if self.tokens_of is not None and len(self.market.known) != self._known:
            self.tokens_meta, self._known = self.tokens_of(), len(self.market.known)
        preds, alerts = [], []
        for interval in dict.fromkeys(s.interval for s in self.specs):
            lo, hi = self.scored_until[interval], self.market.closed_until[interval]
            if hi <= lo:
                continue
            new = self.market.closed_bars(interval, lo, hi)
            feats = self.market.features(interval, new["token"].unique().sort().to_list(), lo, hi, self.tokens_meta) if new.height else None
            for spec in (s for s in self.specs if s.interval == interval):
                if feats is not None and feats.height:
                    scored = predictions(spec, feats, self._loader(spec))
                    preds.append(scored)
                    alerts.append(self._alerts(spec, scored, feats, lo))
            result.scored[interval] = (lo, hi)
        if preds:
            result.predictions = pl.concat(preds)
        if alerts:
            frame = pl.concat(alerts)
            fresh = [i not in self.written for i in alert_ids(frame)]
            result.alerts = frame.filter(pl.Series(fresh, dtype=pl.Boolean))
            self.store.write_alerts(result.alerts)
            self.written.update(alert_ids(result.alerts))
            self._remember(result.alerts)
        for interval, (_, hi) in result.scored.items():
            self.scored_until[interval] = hi
        if result.scored:
            self.store.save_state({"day": self.market.day.isoformat(), "scored_until": self.scored_until,
                                   "too_late_trades": self.market.too_late})
        result.seconds = time.perf_counter() - began
        return result

    def _alerts(self, spec: ModelSpec, scored: pl.DataFrame, feats: pl.DataFrame, lo_us: int) -> pl.DataFrame:
        """The alerts among newly scored rows; each token's last alert so far is put in front of
        its rows, so the cooldown runs on as if every row had been scored in one go."""
        if not spec.detects_events:
            return pl.DataFrame(schema=LIVE_ALERT_SCHEMA)
        step = interval_timedelta(spec.interval)
        tokens = scored["token"].unique().to_list()
        prior = [(t, at) for t in tokens if (at := self.last_alert.get((spec.name, t))) is not None]
        seeds = pl.DataFrame(
            {"token": [t for t, _ in prior], "ts": [at - int(step / timedelta(microseconds=1)) for _, at in prior]},
            schema={"token": pl.String, "ts": pl.Int64},
        ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")), pl.lit(spec.interval).alias("interval"),
                       pl.lit(spec.name).alias("spec"), pl.lit(1.0).alias("score"))
        rows = pl.concat([seeds, scored], how="diagonal_relaxed").select(list(PREDICTION_SCHEMA))
        models: dict[int, ServingModel | str] = {m.version: m for m in self._models.values() if m.spec == spec.name}
        versions = [v for v in scored["version"].unique().to_list() if v is not None]
        thresholds = {v: (models[v].threshold if isinstance(models.get(v), ServingModel) else None) for v in versions}
        fired = detector_alerts(rows, step, spec.alerts.cooldown, thresholds)
        fired = fired.filter(pl.col("ts").dt.epoch("us") >= lo_us)
        if fired.height == 0:
            return pl.DataFrame(schema=LIVE_ALERT_SCHEMA)
        top = explain_alerts(spec, fired, feats, models)
        return fired.with_columns(top).select(list(ALERT_SCHEMA)).with_columns(
            pl.lit(LIVE).alias("mode"), pl.lit(_now(), pl.Datetime("us", "UTC")).alias("written_at"),
        ).cast(LIVE_ALERT_SCHEMA)


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)
