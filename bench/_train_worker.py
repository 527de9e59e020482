"""One training measurement: ``python -m bench._train_worker [alevor|xgboost|rows]``.

alevor (default): the pump detector's trainer on one million labelled rows of 50 features, through
``alevor_assets.lib.modeling.train`` (the chronological split, early stopping on the validation
fold, threshold choice), with the synthetic day's labelled events (the detector needs them).
xgboost: XGBoost's own ``xgb.train`` on the same matrix: the same training and validation rows
(float32 NumPy, as a user would hold them), the same weights and hyperparameters, a
``QuantileDMatrix`` with the validation set referencing it. Both load the same rows first;
rows: only build and cache them (bench/.data/train_1m_50f.parquet), so no measured process pays for it."""

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


def events() -> pl.DataFrame:
    from alevor_assets.lib.synthetic import SyntheticConfig, events_for_day
    from bench._data import SIZES

    tokens, rows = SIZES["10m"]
    cfg = SyntheticConfig(seed=20240102, tokens=tokens, trades_per_token_day=rows / tokens / 1.17,
                          new_token_fraction=0.0, launch_start=DAY)
    return events_for_day(cfg, DAY)


def xgboost_own(rows: pl.DataFrame, spec) -> dict:
    """``xgb.train`` on the rows and weights ``train`` fits on (found on a slim frame of keys)."""
    import numpy as np
    import xgboost as xgb

    from alevor_assets.lib.modeling import split_rows
    from alevor_assets.lib.training import make_trainer
    from alevor_assets.lib.training_set import row_features

    features = row_features(rows)
    keys = rows.select("ts", "token", "horizon_end", pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"))
    split = split_rows(spec, keys)
    x = rows.select(pl.col(features).cast(pl.Float32)).to_numpy()
    y, w = rows["label"].to_numpy(), rows["weight"].to_numpy().astype(np.float64)
    it, iv = split.train.rows["_row"].to_numpy(), split.validation.rows["_row"].to_numpy()
    del keys, split
    p = make_trainer(spec.trainer.name, spec.trainer.params)
    balance = p._balance(y[it])  # the trainer's class balancing, so both fit the same weights
    params = {
        "objective": "binary:logistic", "eval_metric": "logloss", "tree_method": "hist", "max_depth": p.max_depth,
        "learning_rate": p.learning_rate, "subsample": p.subsample, "colsample_bytree": p.colsample_bytree,
        "min_child_weight": p.min_child_weight, "reg_lambda": p.reg_lambda, "max_bin": p.max_bin,
        "seed": p.seed, "nthread": p._common()["n_jobs"],
    }
    started = time.monotonic()
    dtrain = xgb.QuantileDMatrix(x[it], y[it], weight=w[it] * balance, feature_names=features, max_bin=p.max_bin)
    dval = xgb.QuantileDMatrix(x[iv], y[iv], weight=w[iv], ref=dtrain, feature_names=features)
    booster = xgb.train(params, dtrain, p.n_estimators, evals=[(dval, "validation")],
                        early_stopping_rounds=p.early_stopping_rounds, verbose_eval=False)
    seconds = time.monotonic() - started
    return {"seconds": seconds, "rows": rows.height, "features": len(features),
            "positives": int((rows["label"] > 0).sum()), "best_iteration": booster.best_iteration}


if __name__ == "__main__":
    import sys

    from alevor_assets.lib.specs import model_specs
    from alevor_assets.lib.modeling import train
    from alevor_assets.lib.training import make_trainer

    rows = training_rows()
    if sys.argv[1:] == ["rows"]:
        report({"case": "rows", "rows": rows.height})
        raise SystemExit(0)
    spec = replace(next(s for s in model_specs() if s.name == "pump_detector_2s"), features_include=None, features_exclude=())
    if sys.argv[1:] == ["xgboost"]:
        report({"case": "xgboost.train", **xgboost_own(rows, spec)})
        raise SystemExit(0)
    known = events()
    started = time.monotonic()
    result = train(spec, rows, make_trainer(spec.trainer.name, spec.trainer.params), known)
    seconds = time.monotonic() - started
    report({
        "case": "alevor train", "seconds": seconds, "rows": rows.height, "features": len(result.features),
        "positives": int((rows["label"] > 0).sum()), "best_iteration": result.trainer.fit_info().get("best_iteration"),
        "validation_pr_auc": result.validation_metrics.get("pr_auc"),
    })
