"""Training benchmark: ``python -m bench.train`` (``make bench`` runs it).

The pump detector's trainer (XGBoost, the shipped spec's hyperparameters) on one million rows of
50 features built from the 10 M-trade synthetic day, through the same function the
``model_pump_detector_2s`` asset calls. Runs in a fresh process; prints seconds and peak memory.
"""

from __future__ import annotations

from bench._measure import in_subprocess, table


def main() -> None:
    r = in_subprocess("_train_worker")
    print(table([r], ["rows", "features", "positives", "seconds", "peak_mb", "best_iteration", "validation_pr_auc"]))


if __name__ == "__main__":
    main()
