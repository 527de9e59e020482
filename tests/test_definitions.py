"""Loading the code location: every Dagster process (code server, run worker, Celery step) pays
for it at start, so the libraries only some steps use are imported when used."""

import subprocess
import sys

from tests.conftest import REPO

# Each costs from 0.2 s to over a second to import; none is needed to load the definitions.
ON_USE = {"sklearn", "matplotlib", "scipy.stats", "scipy.signal", "xgboost", "torch", "lightgbm", "catboost"}


def test_loading_the_code_location_imports_no_training_plotting_or_signal_library():
    probe = f"import sys, alevor_assets.definitions\nprint(' '.join(sorted(set(sys.modules).intersection({sorted(ON_USE)!r}))))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == [], out.stdout
