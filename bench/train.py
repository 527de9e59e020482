"""Training benchmark: ``python -m bench.train`` (``make bench`` runs it).

The pump detector's trainer (XGBoost, the shipped spec's hyperparameters) on one million rows of
50 features built from the 10 M-trade synthetic day, through the same function the
``model_pump_detector_2s`` asset calls, and XGBoost's own ``xgb.train`` on the same matrix (same
rows, weights and hyperparameters). Each runs in a fresh process; prints seconds, peak memory and
their ratios (the goal: alevor at most 1.2x the time and 2x the peak memory of xgb.train).
"""

from __future__ import annotations

from bench._measure import in_subprocess, table


def main() -> None:
    import os

    # The rows are built (and cached) in a process of their own first, so that neither measured
    # process's peak memory includes computing the features they are made of.
    in_subprocess("_train_worker", "rows")
    load = os.getloadavg()
    ours, own = in_subprocess("_train_worker"), in_subprocess("_train_worker", "xgboost")
    ratio = {"case": "alevor / xgboost", "seconds": ours["seconds"] / own["seconds"], "peak_mb": ours["peak_mb"] / own["peak_mb"]}
    print(table([ours, own, ratio], ["case", "rows", "features", "positives", "seconds", "peak_mb", "best_iteration", "validation_pr_auc"]))
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
