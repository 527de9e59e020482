"""The versioned pipeline settings in ``alevor_assets/pipeline.yaml``, optionally overlaid by the
YAML file named in ``ALEVOR_PIPELINE`` (only the keys it sets change, nested mappings merge)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

PACKAGE_DIR = Path(__file__).resolve().parent.parent
PIPELINE_FILE = PACKAGE_DIR / "pipeline.yaml"
SPECS_DIR = PACKAGE_DIR / "specs"
SQL_DIR = PACKAGE_DIR.parent / "dbt_like_sql"


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overlay.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# Like the partitions' start date, these settings shape the asset graph, so they are read when the
# code location loads rather than through a resource.
@lru_cache(maxsize=1)
def pipeline_settings() -> dict[str, Any]:
    with PIPELINE_FILE.open() as fh:
        settings = yaml.safe_load(fh)
    overlay_path = os.environ.get("ALEVOR_PIPELINE")
    if overlay_path:
        try:
            with open(overlay_path) as fh:
                overlay = yaml.safe_load(fh) or {}
        except OSError as exc:
            raise ValueError(f"ALEVOR_PIPELINE={overlay_path!r} cannot be read: {exc}") from None
        if not isinstance(overlay, dict):
            raise ValueError(f"ALEVOR_PIPELINE={overlay_path!r} must hold a YAML mapping of pipeline.yaml keys")
        unknown = sorted(set(overlay) - set(settings))
        if unknown:
            raise ValueError(f"ALEVOR_PIPELINE={overlay_path!r} sets unknown keys {unknown}; known: {sorted(settings)}")
        settings = _merge(settings, overlay)
    return settings


def user_spec_dirs() -> list[str]:
    """Folders of your own spec files (``ALEVOR_SPECS``, several separated by ``os.pathsep``).
    Like the pipeline settings, specs shape the asset graph, so they are read at load time."""
    raw = os.environ.get("ALEVOR_SPECS", "")
    return [part for part in raw.split(os.pathsep) if part.strip()]
