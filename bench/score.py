"""Scoring benchmark: ``python -m bench.score`` (``make bench`` runs it).

Rows per second of the pump detector's predictions (``lib/serving.model_predictions``: feature
frame in, predictions frame out, as the ``predictions_<spec>`` assets and ``alevor_assets.score``
run it) on one million feature rows, next to XGBoost's own ``predict_proba`` on the same matrix.
Best of three; fresh process.
"""

from __future__ import annotations

from bench._measure import in_subprocess, table


def main() -> None:
    in_subprocess("_train_worker", "rows")  # the 1 M rows built and cached outside the measured process
    r = in_subprocess("_score_worker")
    print(table([r], ["rows", "features", "alevor_seconds", "xgboost_seconds", "ratio", "alevor_rows_per_s",
                      "xgboost_rows_per_s", "same_scores", "peak_mb"]))


if __name__ == "__main__":
    main()
