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


def test_bucket_sums_add_each_bucket_in_row_order():
    rng = np.random.default_rng(4)
    n = 300
    codes = np.sort(rng.integers(0, 4, n))
    ts = np.concatenate([np.sort(rng.integers(0, 60_000_000, (codes == c).sum())) for c in range(4)])
    price = rng.lognormal(size=n)
    weights = np.vstack([rng.random(n), (rng.random(n) < 0.3).astype(np.float64)])
    code, start, cnt, price_sum, price_max, sums = fk.bucket_sums(codes, ts, price, weights, 5_000_000)
    expected = {}
    for i in range(n):
        key = (int(codes[i]), int(ts[i] // 5_000_000 * 5_000_000))
        e = expected.setdefault(key, [0, 0.0, -math.inf, 0.0, 0.0])
        e[0] += 1
        e[1] += price[i]
        e[2] = max(e[2], price[i])
        e[3] += weights[0, i]
        e[4] += weights[1, i]
    assert list(zip(code.tolist(), start.tolist())) == list(expected)
    got = np.column_stack([cnt, price_sum, price_max, sums[0], sums[1]])
    assert _same_bits(got, np.array(list(expected.values())))


def test_the_asof_merge_equals_searchsorted_with_ties_and_misses():
    rng = np.random.default_rng(8)
    right = np.sort(rng.integers(5, 50, 40))  # repeated keys, none below 5
    left = np.sort(rng.integers(0, 60, 200))
    assert np.array_equal(fk.last_key_at_or_before(left, right), np.searchsorted(right, left, side="right") - 1)
    assert fk.last_key_at_or_before(left, right[:0]).tolist() == [-1] * len(left)
