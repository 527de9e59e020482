"""One scoring measurement: ``python -m bench._score_worker``: the pump detector's model on one
million feature rows (50 features), through ``alevor_assets.lib.serving.model_predictions`` (what
the predictions assets and ``alevor_assets.score`` run), next to XGBoost's own ``predict_proba`` on
the same matrix."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import polars as pl

from bench._measure import report
from bench._train_worker import training_rows

REPEATS = 3


def best_of(fn) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


if __name__ == "__main__":
    from alevor_assets.lib.serving import ServingModel, model_predictions
    from alevor_assets.lib.specs import model_specs
    from alevor_assets.lib.training import make_trainer
    from alevor_assets.lib.training_set import row_features

    rows = training_rows()
    spec = replace(next(s for s in model_specs() if s.name == "pump_detector_2s"), features_include=None, features_exclude=())
    # Scoring speed needs a fitted model, not a validated one: the spec's trainer fitted on the
    # first 85 % of the rows (the one-day bench data has no planted event in a test fold, which
    # `lib.modeling.train` rightly refuses for a detector).
    names = row_features(rows)
    cut = int(rows.height * 0.85)
    fit_rows, val_rows = rows[:cut], rows[cut:]
    trainer = make_trainer(spec.trainer.name, spec.trainer.params)

    def xyw(frame):
        return frame.select(pl.col(names).cast(pl.Float64)), frame["label"].to_numpy(), frame["weight"].to_numpy().astype(np.float64)

    trainer.fit(*xyw(fit_rows), *xyw(val_rows))
    model = ServingModel(spec.name, 1, trainer, names, 0.5, [0, 1], "")
    features = rows.select("token", "interval", "ts", *names)
    matrix = features.select(names).to_numpy().astype(np.float64)
    xgb_model = trainer._model
    ours = best_of(lambda: model_predictions(spec, features, model))
    theirs = best_of(lambda: xgb_model.predict_proba(matrix))
    same = np.allclose(model_predictions(spec, features, model)["score"].to_numpy(), xgb_model.predict_proba(matrix)[:, 1])
    report({
        "rows": features.height, "features": len(names), "alevor_seconds": ours, "xgboost_seconds": theirs,
        "ratio": ours / theirs, "alevor_rows_per_s": features.height / ours, "xgboost_rows_per_s": features.height / theirs,
        "same_scores": bool(same),
    })
