"""Your own specs beside the shipped ones (ALEVOR_SPECS): add, replace, switch off."""

import subprocess
import sys

import pytest

from alevor_assets.lib.config import SPECS_DIR
from alevor_assets.lib.specs import SpecError, resolve_specs
from tests.conftest import REPO, cli_env

NEW_SPEC = """name: my_regime_1m
description: Regime on 1-minute bars.
interval: 1m
label: {strategy: regime, params: {horizon: 30m}}
trainer: {name: xgboost_classifier}
primary_metric: accuracy
"""


def _shipped() -> set[str]:
    return {p.stem for p in SPECS_DIR.glob("*.yaml")}


def test_a_user_folder_adds_replaces_and_switches_off_specs(tmp_path):
    (tmp_path / "mine.yaml").write_text(NEW_SPEC)
    wider = (SPECS_DIR / "pump_detector_2s.yaml").read_text().replace("days: 30", "days: 500")
    (tmp_path / "pump_detector_2s.yaml").write_text(wider)
    (tmp_path / "off.yaml").write_text("name: friction_1m\nenabled: false\n")
    source = resolve_specs(SPECS_DIR, [tmp_path])
    by_name = {s.name: s for s in source.specs}
    assert set(by_name) == (_shipped() - {"friction_1m"}) | {"my_regime_1m"}
    assert by_name["pump_detector_2s"].window_days == 500 and not by_name["pump_detector_2s"].shipped
    assert by_name["pump_detector_2s"].path == str(tmp_path / "pump_detector_2s.yaml")
    assert by_name["regime_classifier_5m"].shipped and by_name["regime_classifier_5m"].window_days == 60
    assert source.switched_off == {"friction_1m": str(tmp_path / "off.yaml")}
    # Without the folder, the shipped specs exactly.
    assert {s.name for s in resolve_specs(SPECS_DIR, []).specs} == _shipped()


def test_mistakes_in_a_user_folder_are_named(tmp_path):
    (tmp_path / "a.yaml").write_text("name: nothing_like_it\nenabled: false\n")
    with pytest.raises(SpecError, match=r"a.yaml: switches off 'nothing_like_it', but no such spec"):
        resolve_specs(SPECS_DIR, [tmp_path])
    (tmp_path / "a.yaml").write_text(NEW_SPEC)
    (tmp_path / "b.yaml").write_text(NEW_SPEC)
    with pytest.raises(SpecError, match=r"b.yaml: spec name 'my_regime_1m' already used by .*a.yaml"):
        resolve_specs(SPECS_DIR, [tmp_path])
    (tmp_path / "b.yaml").write_text(NEW_SPEC.replace("my_regime_1m", "other").replace("trainer:", "trainr:"))
    with pytest.raises(SpecError, match=r"b.yaml: unknown field\(s\) \['trainr'\]"):
        resolve_specs(SPECS_DIR, [tmp_path])
    with pytest.raises(SpecError, match="is not a folder"):
        resolve_specs(SPECS_DIR, [tmp_path / "missing"])


def test_the_cli_and_the_code_location_serve_the_user_specs(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "mine.yaml").write_text(NEW_SPEC)
    (folder / "off.yaml").write_text("name: friction_1m\nenabled: false\n")
    env = cli_env(tmp_path, ALEVOR_SPECS=str(folder))
    listing = subprocess.run([sys.executable, "-m", "alevor_assets", "specs"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120, check=True).stdout
    mine = next(line for line in listing.splitlines() if line.startswith("my_regime_1m "))
    assert "ALEVOR_SPECS" in mine and str(folder / "mine.yaml") in mine
    assert next(line for line in listing.splitlines() if line.startswith("friction_1m ")).count("switched off") == 1
    code = ("from alevor_assets.definitions import defs; keys = {k.to_user_string() for k in defs().resolve_asset_graph()"
            ".get_all_asset_keys()}; print(sorted(k for k in keys if 'my_regime' in k or 'friction' in k))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert out.strip() == str(sorted(f"{a}_my_regime_1m" for a in ("labels", "training_set", "drift", "model", "validation", "promoted_model", "predictions")))
