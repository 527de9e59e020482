"""Model-zoo benchmark: ``python -m bench.zoo`` (``make bench`` runs it).

Each new trainer (LightGBM, CatBoost, LSTM, Transformer) next to XGBoost on the 1 h direction
spec's training rows of the demo (``make demo``'s week of synthetic hourly bars), each in a fresh
process: fit seconds (``lib.modeling.train``: split, early stopping, threshold), peak memory
(``baseline_mb``: after importing the libraries, before training), and the test-fold metrics the
spec's gate reads. The demo data is made once in ``bench/.data/home-demo`` when missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench._data import DATA
from bench._measure import ROOT, in_subprocess, table

TRAINERS = ["xgboost_classifier", "lightgbm_classifier", "catboost_classifier", "lstm_classifier", "transformer_classifier"]
HOME = DATA / "home-demo"


def _has_rows(home: str | os.PathLike[str]) -> bool:
    return (Path(home) / "warehouse" / "training_set_direction_classifier_1h").is_dir()


def demo_home() -> str:
    """``$ALEVOR_HOME`` when a demo filled it (``make bench`` sets it to the repo's ``.alevor``),
    else ``bench/.data/home-demo``, filled by a demo run when empty."""
    given = os.environ.get("ALEVOR_HOME")
    if given and _has_rows(given):
        return given
    if not _has_rows(HOME):
        env = {**os.environ, "ALEVOR_HOME": str(HOME), "DAGSTER_HOME": str(HOME / "dagster")}
        (HOME / "dagster").mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "dagster.yaml", HOME / "dagster" / "dagster.yaml")
        bin_dir = os.path.dirname(sys.executable)
        subprocess.run([os.path.join(bin_dir, "dagster"), "instance", "migrate"], env=env, check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "alevor_assets", "demo"], env=env, cwd=ROOT, check=True, capture_output=True)
    return str(HOME)


def main() -> None:
    home = demo_home()
    rows = [in_subprocess("_zoo_worker", name, home) for name in TRAINERS]
    print(table(rows, ["trainer", "rows", "test_rows", "fit_s", "baseline_mb", "peak_mb", "rounds_or_epochs",
                       "roc_auc", "directional_accuracy", "profit_factor", "max_drawdown", "trades"]))
    print()
    print(table(rows, ["trainer", "gate"]))


if __name__ == "__main__":
    main()
