"""Model governance: when a validated version replaces the promoted one, and what it is compared with."""

import numpy as np
import polars as pl
import pytest

from alevor_assets.lib.catalog import Catalog
from alevor_assets.lib.promotion import Incumbent, decide, rescore_incumbent
from alevor_assets.lib.registry import ModelRegistry
from alevor_assets.lib.specs import parse_spec
from alevor_assets.lib.training import make_trainer
from alevor_assets.lib.validation import evaluate_gate

GATE = {"min_pr_auc": 0.30, "min_event_recall": 0.5}
PASSING = {"pr_auc": 0.60, "event_recall": 0.8}
FAILING = {"pr_auc": 0.90, "event_recall": 0.4}  # would beat anything, but misses its recall floor


def _decide(metrics: dict, incumbent_value: float | None):
    incumbent = Incumbent(None if incumbent_value is None else 1, incumbent_value, "incumbent")
    return decide(2, evaluate_gate(metrics, GATE), "pr_auc", metrics.get("pr_auc"), incumbent)


def test_a_version_that_fails_its_gate_is_not_promoted_even_when_it_would_beat_the_incumbent():
    d = _decide(FAILING, 0.50)
    assert (d.promote, d.gate_passed, d.beats_incumbent) == (False, False, True)
    assert "gate failed (event_recall >= 0.5)" in d.text


def test_a_version_that_passes_but_does_not_beat_the_incumbent_is_not_promoted():
    d = _decide(PASSING, 0.70)
    assert (d.promote, d.gate_passed, d.beats_incumbent) == (False, True, False)
    assert "does not beat the incumbent" in d.text


def test_a_version_that_passes_and_beats_the_incumbent_is_promoted():
    d = _decide(PASSING, 0.59)
    assert (d.promote, d.gate_passed, d.beats_incumbent) == (True, True, True)
    assert d.text.startswith("**Promoted v2**")


def test_a_tie_keeps_the_incumbent():
    d = _decide(PASSING, 0.60)
    assert (d.promote, d.beats_incumbent) == (False, False)


def test_without_an_incumbent_passing_the_gate_is_enough_and_no_value_never_promotes():
    assert _decide(PASSING, None).promote
    assert not _decide(FAILING, None).promote
    no_value = decide(2, evaluate_gate({}, {}), "pr_auc", None, Incumbent(None, None, "none"))
    assert (no_value.gate_passed, no_value.promote) == (True, False)


def test_gate_bounds_are_inclusive_and_both_kinds_must_hold():
    assert evaluate_gate({"pr_auc": 0.30, "max_drawdown": 0.20}, {"min_pr_auc": 0.30, "max_max_drawdown": 0.20}).passed
    assert not evaluate_gate({"pr_auc": 0.30, "max_drawdown": 0.21}, {"min_pr_auc": 0.30, "max_max_drawdown": 0.20}).passed
    assert not evaluate_gate({"pr_auc": 0.29, "max_drawdown": 0.10}, {"min_pr_auc": 0.30, "max_max_drawdown": 0.20}).passed


SPEC = parse_spec({
    "name": "toy", "interval": "1m", "label": {"strategy": "direction"},
    "trainer": {"name": "xgboost_classifier", "params": {"n_estimators": 30, "early_stopping_rounds": 5}},
    "primary_metric": "roc_auc",
})


def _rows(n: int, noise: float, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    start = np.datetime64("2024-01-01T00:00:00", "us")
    stamps = start + np.arange(n) * np.timedelta64(60, "s")
    label = (a + noise * rng.normal(size=n) > 0).astype(np.int64)
    return pl.DataFrame({
        "token": ["T"] * n, "interval": ["1m"] * n,
        "ts": pl.Series(stamps).dt.replace_time_zone("UTC"),
        "a": a, "b": rng.normal(size=n), "label": label, "weight": np.ones(n),
        "horizon_end": pl.Series(stamps + np.timedelta64(120, "s")).dt.replace_time_zone("UTC"),
    })


def _register(reg: ModelRegistry, noise: float) -> int:
    rows = _rows(600, noise, seed=1)
    trainer = make_trainer(SPEC.trainer.name, SPEC.trainer.params)
    x = rows.select("a", "b")
    y = rows["label"].to_numpy()
    trainer.fit(x[:400], y[:400], np.ones(400), x[400:], y[400:], np.ones(200))
    meta = {"trainer": {"name": trainer.name, "params": trainer.params()}, "features": ["a", "b"], "threshold": 0.5,
            "interval": "1m", "code_version": "test", "fit": trainer.fit_info()}
    return reg.save(SPEC.name, trainer, meta).version


def test_the_incumbent_is_rescored_on_the_candidates_test_rows(tmp_path):
    reg = ModelRegistry(tmp_path / "models", Catalog(tmp_path / "alevor.duckdb"))
    assert rescore_incumbent(reg, SPEC, _rows(50, 0.5, 9)).value is None
    v1 = _register(reg, noise=0.3)
    reg.record_validation(SPEC.name, v1, metrics={"roc_auc": 0.123}, primary_metric="roc_auc", gate_passed=True,
                          promote=True, report_path=tmp_path / "r.md")
    easy, hard = _rows(400, 0.1, 7), _rows(400, 3.0, 8)
    on_easy, on_hard = rescore_incumbent(reg, SPEC, easy), rescore_incumbent(reg, SPEC, hard)
    # Scored on the rows given, not the value it recorded when it was validated (0.123).
    assert on_easy.version == 1 and on_easy.value > 0.9
    assert 0.5 < on_hard.value < on_easy.value
    assert "on the same test rows" in on_easy.note


def test_an_incumbent_that_cannot_be_loaded_falls_back_to_its_recorded_value(tmp_path):
    reg = ModelRegistry(tmp_path / "models", Catalog(tmp_path / "alevor.duckdb"))
    v1 = _register(reg, noise=0.3)
    reg.record_validation(SPEC.name, v1, metrics={"roc_auc": 0.77}, primary_metric="roc_auc", gate_passed=True,
                          promote=True, report_path=tmp_path / "r.md")
    artifact = tmp_path / "models" / SPEC.name / "v1" / "model.ubj"
    artifact.write_bytes(artifact.read_bytes()[:-1] + b"\x00")
    incumbent = rescore_incumbent(reg, SPEC, _rows(100, 0.1, 3))
    assert incumbent.value == pytest.approx(0.77)
    assert "could not re-score" in incumbent.note and "refusing to load" in incumbent.note
    # A candidate must still beat that recorded value.
    gate = evaluate_gate({"roc_auc": 0.7}, {})
    assert not decide(2, gate, "roc_auc", 0.7, incumbent).promote
    assert decide(2, gate, "roc_auc", 0.8, incumbent).promote
