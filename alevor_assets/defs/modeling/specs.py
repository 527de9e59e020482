"""The model specs this code location serves: every ``alevor_assets/specs/*.yaml``."""

from __future__ import annotations

from alevor_assets.lib.config import SPECS_DIR
from alevor_assets.lib.specs import ModelSpec, label_sets, load_specs

MODEL_SPECS: list[ModelSpec] = load_specs(SPECS_DIR)
LABEL_SETS = label_sets(MODEL_SPECS)
