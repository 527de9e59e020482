import numpy as np

from alevor_assets.lib.drift import psi


def test_psi_is_zero_for_the_same_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=20_000)
    assert psi(ref, rng.normal(size=20_000)) < 0.01
    small, large = psi(ref, rng.normal(0.2, 1, 20_000)), psi(ref, rng.normal(1.0, 1, 20_000))
    assert 0.02 < small < 0.1 < 0.25 < large


def test_psi_by_hand_on_two_bins():
    # Reference quartiles put 1/2 of the mass below 2 and 1/2 above with 3 edges [0, 2, 4]... use
    # a reference of 0..9 with bins=2: edges 0, 4.5, 9 -> halves. Current: 8 of 10 in the upper half.
    ref = np.arange(10.0)
    cur = np.array([0, 1] + [6] * 8, dtype=float)
    expected = (0.2 - 0.5) * np.log(0.2 / 0.5) + (0.8 - 0.5) * np.log(0.8 / 0.5)
    assert abs(psi(ref, cur, bins=2) - expected) < 1e-12


def test_psi_undefined_for_constant_or_tiny_samples():
    assert psi(np.ones(100), np.ones(100)) is None
    assert psi(np.arange(5.0), np.arange(5.0)) is None
