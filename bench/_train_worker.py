"""One training measurement: ``python -m bench._train_worker``: the pump detector's trainer on
one million labelled rows of 50 features, through ``alevor_assets.lib.modeling.train`` (the
chronological split, early stopping on the validation fold, threshold choice)."""

from __future__ import annotations

import time
from dataclasses import replace

import polars as pl

from bench._data import DATA, DAY, trades_path
from bench._measure import report

ROWS, FEATURES = 1_000_000, 50


def training_rows() -> pl.DataFrame:
    path = DATA / "train_1m_50f.parquet"
    if path.exists():
        return pl.read_parquet(path)
    from alevor_assets import compute_features, resample_trades
    from alevor_assets.lib.labels import LabelContext, finalize_labels, make_label_strategy
    from alevor_assets.lib.synthetic import SyntheticConfig, events_for_day
    from bench._data import SIZES

    trades = pl.read_parquet(trades_path("10m"))
    bars = pl.concat([resample_trades(trades, i) for i in ("2s", "1m", "5m")])
    feats = compute_features(bars, "2s", trades=trades)
    tokens, rows = SIZES["10m"]
    cfg = SyntheticConfig(seed=20240102, tokens=tokens, trades_per_token_day=rows / tokens / 1.17,
                          new_token_fraction=0.0, launch_start=DAY)
    strategy = make_label_strategy("pump_events")
    two_s = bars.filter(pl.col("interval") == "2s")
    labels = finalize_labels(strategy.compute(LabelContext(two_s, "2s", events=events_for_day(cfg, DAY))), "pump_events", "2s", "classification", None)
    names = [c for c in feats.columns[3:] if feats[c].null_count() < feats.height // 2][:FEATURES]
    data = (
        feats.select("token", "interval", "ts", *names)
        .join(labels.select("token", "interval", "ts", "label", "weight", "horizon_end"), on=["token", "interval", "ts"])
        .sort("ts", "token").head(ROWS)
        .with_columns(pl.lit("bench").alias("spec"))
    )
    data.write_parquet(path)
    return data


if __name__ == "__main__":
    from alevor_assets.lib.specs import model_specs
    from alevor_assets.lib.modeling import train
    from alevor_assets.lib.training import make_trainer

    rows = training_rows()
    spec = replace(next(s for s in model_specs() if s.name == "pump_detector_2s"), features_include=None, features_exclude=())
    started = time.monotonic()
    result = train(spec, rows, make_trainer(spec.trainer.name, spec.trainer.params))
    seconds = time.monotonic() - started
    report({
        "seconds": seconds, "rows": rows.height, "features": len(result.features),
        "positives": int((rows["label"] > 0).sum()), "best_iteration": result.trainer.fit_info().get("best_iteration"),
        "validation_pr_auc": result.validation_metrics.get("pr_auc"),
    })
