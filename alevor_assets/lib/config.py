"""The versioned pipeline settings in ``alevor_assets/pipeline.yaml``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

PACKAGE_DIR = Path(__file__).resolve().parent.parent
PIPELINE_FILE = PACKAGE_DIR / "pipeline.yaml"
SPECS_DIR = PACKAGE_DIR / "specs"
SQL_DIR = PACKAGE_DIR.parent / "dbt_like_sql"


@lru_cache(maxsize=1)
def pipeline_settings() -> dict[str, Any]:
    with PIPELINE_FILE.open() as fh:
        return yaml.safe_load(fh)
