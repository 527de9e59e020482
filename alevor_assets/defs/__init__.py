"""Everything Dagster sees, one folder per stage (loaded by ``definitions.py``)."""

import warnings

import dagster as dg

# Dagster marks parameters we rely on (single-run backfills, partition mappings that tolerate
# missing upstream days) as beta; the warning repeats on every import and says nothing actionable.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
