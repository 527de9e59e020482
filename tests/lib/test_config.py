"""ALEVOR_PIPELINE overlays the shipped pipeline.yaml key by key."""

import pytest
import yaml

from alevor_assets.lib.config import PIPELINE_FILE, pipeline_settings


@pytest.fixture
def overlay(tmp_path, monkeypatch):
    def use(content: str):
        path = tmp_path / "overlay.yaml"
        path.write_text(content)
        monkeypatch.setenv("ALEVOR_PIPELINE", str(path))
        pipeline_settings.cache_clear()
        return pipeline_settings()

    yield use
    monkeypatch.delenv("ALEVOR_PIPELINE", raising=False)
    pipeline_settings.cache_clear()


def test_an_overlay_changes_only_the_keys_it_sets(overlay):
    shipped = yaml.safe_load(PIPELINE_FILE.read_text())
    merged = overlay("synthetic: {tokens: 3}\nbars: {intervals: [2s, 1m]}\n")
    assert merged["synthetic"]["tokens"] == 3
    assert merged["synthetic"]["seed"] == shipped["synthetic"]["seed"]
    assert merged["bars"]["intervals"] == ["2s", "1m"]
    assert merged["bars"]["dollar_thresholds"] == shipped["bars"]["dollar_thresholds"]
    assert merged["postgres"] == shipped["postgres"]


def test_an_unknown_key_or_a_missing_file_is_a_clear_error(overlay, monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=r"unknown keys \['synthtic'\]"):
        overlay("synthtic: {tokens: 3}\n")
    monkeypatch.setenv("ALEVOR_PIPELINE", str(tmp_path / "nope.yaml"))
    pipeline_settings.cache_clear()
    with pytest.raises(ValueError, match="cannot be read"):
        pipeline_settings()
