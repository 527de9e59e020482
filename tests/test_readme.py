"""The README says what the code does."""

import re


from alevor_assets import compute_features
from alevor_assets.lib.bars import time_bars
from alevor_assets.lib.features import FeatureConfig
from alevor_assets.lib.synthetic import trades_for_day
from tests.conftest import REPO, START, small_config


def _documented_names() -> list[str]:
    text = (REPO / "README.md").read_text()
    table = text.split("<!-- feature-table:start")[1].split("<!-- feature-table:end")[0]
    return re.findall(r"^\| `([^`]+)` \|", table, flags=re.M)


def test_feature_table_matches_the_produced_columns():
    config = FeatureConfig()
    documented = []
    for name in _documented_names():
        if "<span>" in name:
            documented += [name.replace("<span>", s) for s in config.spans]
        elif "<chunk>" in name:
            documented += [name.replace("<chunk>", c) for c in config.rush_chunks]
        elif "<coarser>" in name:
            documented += [name.replace("<coarser>", j) for j in config.multi_timeframe]
        else:
            documented.append(name)
    trades = trades_for_day(small_config(), START)
    bars = time_bars(trades, ["2s", "1m", "5m", "1h"])
    produced = compute_features(bars, "2s", trades=trades, config=config).columns[3:]
    assert sorted(documented) == sorted(produced)
    assert len(documented) == len(set(documented))


def test_every_environment_variable_the_code_reads_is_documented():
    text = (REPO / "README.md").read_text()
    code = "\n".join(p.read_text() for p in (REPO / "alevor_assets").rglob("*.py"))
    used = set(re.findall(r"\b(ALEVOR_[A-Z_]+)\b", code))
    assert used, "no variables found"
    for name in sorted(used):
        assert f"`{name}`" in text, name
