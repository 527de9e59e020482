"""One model-zoo measurement: ``python -m bench._zoo_worker <trainer> <alevor_home>``: the 1 h
direction spec (``direction_classifier_1h``) with its trainer replaced, on the demo's training rows,
through ``alevor_assets.lib.modeling.train`` (split, purging, embargo, early stopping, threshold),
then its test-fold metrics and gate. Prints one JSON line: fit seconds, peak memory, metrics."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

from bench._measure import peak_mb, report

SPEC = "direction_classifier_1h"
#: The trainer and hyperparameters of each variant: the shipped specs' for XGBoost, the LSTM and the
#: Transformer; LightGBM and CatBoost sized like the XGBoost spec (300 rounds, depth 4, rate 0.05).
VARIANTS = {
    "xgboost_classifier": ("direction_classifier_1h", None),
    "lightgbm_classifier": (None, {"n_estimators": 300, "num_leaves": 15, "max_depth": 4, "learning_rate": 0.05,
                                   "early_stopping_rounds": 30}),
    "catboost_classifier": (None, {"iterations": 300, "depth": 4, "learning_rate": 0.05, "early_stopping_rounds": 30}),
    "lstm_classifier": ("direction_lstm_1h", None),
    "transformer_classifier": ("direction_transformer_1h", None),
}


def main(trainer_name: str, home: str) -> None:
    from alevor_assets.lib.lifecycle import read_training_rows
    from alevor_assets.lib.modeling import evaluate, train
    from alevor_assets.lib.specs import SPECS_DIR, TrainerSpec, load_spec
    from alevor_assets.lib.training import make_trainer
    from alevor_assets.lib.validation import evaluate_gate
    from alevor_assets.lib.warehouse import Warehouse

    shipped, params = VARIANTS[trainer_name]
    base = load_spec(SPECS_DIR / f"{SPEC}.yaml")
    spec = load_spec(SPECS_DIR / f"{shipped}.yaml") if shipped else replace(base, trainer=TrainerSpec(trainer_name, params))
    wh = Warehouse(Path(home) / "warehouse")
    folder = wh.root / base.training_set_asset
    days = sorted(date.fromisoformat(p.name.split("=", 1)[1]) for p in folder.iterdir() if p.name.startswith("date="))
    rows, _ = read_training_rows(wh, base, days)
    trainer = make_trainer(spec.trainer.name, spec.trainer.params)
    if trainer.needs_keys:
        import torch  # noqa: F401  (imported before the baseline, like xgboost below)
    import xgboost  # noqa: F401
    before = peak_mb()
    started = time.perf_counter()
    result = train(spec, rows, trainer)
    seconds = time.perf_counter() - started
    classes = trainer.fit_info().get("classes")
    ev = evaluate(spec, trainer, result.split.test.rows, result.features, result.threshold, classes)
    gate = evaluate_gate(ev.metrics, spec.gate)
    info = trainer.fit_info()
    m = ev.metrics
    report({
        "trainer": trainer_name, "rows": rows.height, "train_rows": result.split.train.height,
        "test_rows": result.split.test.height, "features": len(result.features), "fit_s": round(seconds, 2),
        "baseline_mb": round(before), "rounds_or_epochs": info.get("best_iteration", info.get("best_epoch")),
        "roc_auc": m.get("roc_auc"), "directional_accuracy": m.get("directional_accuracy"),
        "profit_factor": m.get("profit_factor"), "max_drawdown": m.get("max_drawdown"), "trades": m.get("trades"),
        "gate": "pass" if gate.passed else "fail: " + "; ".join(gate.failures()),
    })


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
