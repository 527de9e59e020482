"""The compiled kernels against plain Python doing the same floating-point operations in the same
order: equal bit for bit (windows are summed directly, never by a running add/subtract)."""

import math

import numpy as np
import pytest

from alevor_assets.lib import feature_kernels as fk


def _series(seed=5, n=400):
    rng = np.random.default_rng(seed)
    x = rng.lognormal(size=n) * 1e4
    x[rng.integers(0, n, 12)] = np.nan
    codes = np.sort(rng.integers(0, 7, n))
    return x, fk.segment_starts(codes)


def _same_bits(a, b):
    return np.array_equal(np.asarray(a, np.float64).view(np.int64), np.asarray(b, np.float64).view(np.int64))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 15, 60])
def test_rolling_windows_equal_a_sequential_sum(k):
    x, start = _series()
    sums, means, stds = [], [], []
    for i in range(len(x)):
        if i - k + 1 < start[i]:
            sums.append(math.nan), means.append(math.nan), stds.append(math.nan)
            continue
        acc = 0.0
        for v in x[i - k + 1 : i + 1]:
            acc += v
        m = acc / k
        var = 0.0
        for v in x[i - k + 1 : i + 1]:
            var += (v - m) * (v - m)
        sums.append(acc), means.append(m), stds.append(math.sqrt(var / k))
    assert _same_bits(fk.rolling_sum(x, start, k), sums)
    assert _same_bits(fk.rolling_mean(x, start, k), np.array(sums) / k)
    mean, std = fk.rolling_mean_std(x, start, k)
    assert _same_bits(mean, means) and _same_bits(std, stds)


def test_true_range_and_moves_equal_their_numpy_definitions():
    x, start = _series(seed=9)
    rng = np.random.default_rng(2)
    high, low = x * (1 + rng.random(len(x)) / 50), x * (1 - rng.random(len(x)) / 50)
    prev = fk.shifted(x, start, 1)
    pos = np.arange(len(x)) - start
    with np.errstate(invalid="ignore"):
        tr = np.maximum(high - low, np.maximum(np.abs(high - prev), np.abs(low - prev)))
        assert _same_bits(fk.true_range(high, low, prev, pos), np.where(pos >= 1, tr, np.nan))
        diff = x - prev
        gain, loss = fk.gains_losses(diff)
        assert _same_bits(gain, np.where(diff > 0, diff, np.where(np.isnan(diff), np.nan, 0.0)))
        assert _same_bits(loss, np.where(diff < 0, -diff, np.where(np.isnan(diff), np.nan, 0.0)))
