"""The model specs this code location serves: every ``alevor_assets/specs/*.yaml``.

Modules listed under ``plugins:`` in pipeline.yaml are imported first, so specs can name label
strategies and trainers registered there.
"""

from __future__ import annotations

import importlib

from alevor_assets.lib.config import SPECS_DIR, pipeline_settings
from alevor_assets.lib.specs import ModelSpec, label_sets, load_specs

for _module in pipeline_settings().get("plugins") or []:
    importlib.import_module(_module)

MODEL_SPECS: list[ModelSpec] = load_specs(SPECS_DIR)
LABEL_SETS = label_sets(MODEL_SPECS)
