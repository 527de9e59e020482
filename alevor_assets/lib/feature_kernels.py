"""Compiled per-token kernels for features.

Rows are in (token, ts) order and ``start[i]`` is the first row of row ``i``'s token. Every
kernel restarts at each token (a series: a token restarts after a long silence), so a series'
values depend on its own rows only. Windows are summed directly (or, for wall-clock spans, from
prefix sums anchored at span-aligned blocks), never with a running add/subtract: a value never
depends on where the series was read from, so a partition computed with its warm-up equals the
same rows of the continuous series bit for bit. The recursive kernels (EMAs, day-anchored sums)
can resume a series from a later row given their state there (the live path's ticks).
"""

from __future__ import annotations

import numpy as np
from numba import njit

NAN = np.nan


@njit(cache=True, nogil=True)
def segment_starts(codes):  # pragma: no cover - compiled
    """``start[i]``: index of the first row of row i's token."""
    n = len(codes)
    start = np.empty(n, np.int64)
    s = 0
    for i in range(n):
        if i > 0 and codes[i] != codes[i - 1]:
            s = i
        start[i] = s
    return start


@njit(cache=True, nogil=True)
def shifted(x, start, k):  # pragma: no cover - compiled
    """x[i - k] within the token, NaN where there is none."""
    out = np.empty(len(x))
    for i in range(len(x)):
        out[i] = x[i - k] if i - k >= start[i] else NAN
    return out


@njit(cache=True, nogil=True)
def rolling_sum(x, start, k):  # pragma: no cover - compiled
    """Sum of the last ``k`` values of the token (NaN until there are ``k``, or if any is NaN)."""
    n = len(x)
    out = np.empty(n)
    i = 0
    while i < n:
        if i + 3 < n and i - k + 1 >= start[i + 3]:
            # Four windows at once: four independent chains of additions keep the CPU busy,
            # and each window still adds its values in order (the same bits as one at a time).
            b = i - k + 1
            a0 = 0.0
            a1 = 0.0
            a2 = 0.0
            a3 = 0.0
            for t in range(b, b + k):
                a0 += x[t]
                a1 += x[t + 1]
                a2 += x[t + 2]
                a3 += x[t + 3]
            out[i] = a0
            out[i + 1] = a1
            out[i + 2] = a2
            out[i + 3] = a3
            i += 4
            continue
        if i - k + 1 < start[i]:
            out[i] = NAN
        else:
            acc = 0.0
            for j in range(i - k + 1, i + 1):
                acc += x[j]
            out[i] = acc
        i += 1
    return out


@njit(cache=True, nogil=True)
def rolling_mean(x, start, k):  # pragma: no cover - compiled
    """Mean of the last ``k`` values of the token (NaN until there are ``k``, or if any is NaN),
    summed directly so a value never depends on where the series was read from."""
    return rolling_sum(x, start, k) / k


@njit(cache=True, nogil=True)
def rolling_mean_std(x, start, k):  # pragma: no cover - compiled
    """Mean and population standard deviation of the last ``k`` values (two passes per window;
    like ``rolling_sum``, four windows at a time)."""
    n = len(x)
    mean = rolling_sum(x, start, k) / k
    std = np.empty(n)
    i = 0
    while i < n:
        if i + 3 < n and i - k + 1 >= start[i + 3]:
            b = i - k + 1
            m0 = mean[i]
            m1 = mean[i + 1]
            m2 = mean[i + 2]
            m3 = mean[i + 3]
            v0 = 0.0
            v1 = 0.0
            v2 = 0.0
            v3 = 0.0
            for t in range(b, b + k):
                d0 = x[t] - m0
                d1 = x[t + 1] - m1
                d2 = x[t + 2] - m2
                d3 = x[t + 3] - m3
                v0 += d0 * d0
                v1 += d1 * d1
                v2 += d2 * d2
                v3 += d3 * d3
            std[i] = np.sqrt(v0 / k)
            std[i + 1] = np.sqrt(v1 / k)
            std[i + 2] = np.sqrt(v2 / k)
            std[i + 3] = np.sqrt(v3 / k)
            i += 4
            continue
        if i - k + 1 < start[i]:
            std[i] = NAN
        else:
            var = 0.0
            for j in range(i - k + 1, i + 1):
                d = x[j] - mean[i]
                var += d * d
            std[i] = np.sqrt(var / k)
        i += 1
    return mean, std


@njit(cache=True, nogil=True)
def true_range(high, low, prev_close, pos):  # pragma: no cover - compiled
    """TA-Lib's true range, max(high - low, |high - prev close|, |low - prev close|): NaN on a
    series' first row (``pos`` 0) or where any input is NaN."""
    n = len(high)
    out = np.empty(n)
    for i in range(n):
        a = high[i] - low[i]
        b = abs(high[i] - prev_close[i])
        c = abs(low[i] - prev_close[i])
        if pos[i] < 1 or a != a or b != b or c != c:
            out[i] = NAN
        else:
            m = b if b >= c else c
            out[i] = a if a >= m else m
    return out


@njit(cache=True, nogil=True)
def gains_losses(diff):  # pragma: no cover - compiled
    """Upward and downward moves (each 0 when the move goes the other way; NaN stays NaN)."""
    n = len(diff)
    gain = np.empty(n)
    loss = np.empty(n)
    for i in range(n):
        d = diff[i]
        if d != d:
            gain[i] = NAN
            loss[i] = NAN
        else:
            gain[i] = d if d > 0 else 0.0
            loss[i] = -d if d < 0 else 0.0
    return gain, loss


@njit(cache=True, nogil=True)
def anchored_prefix(x, block, start, init_ref, init_p1, init_p2):  # pragma: no cover - compiled
    """The running sums ``anchored_mean_std`` reads: each block (rows with the same ``block``,
    e.g. a UTC day) keeps prefix sums of its values about the block's first value (``ref``,
    ``p1``, ``p2``) and the index of its first row (``first``). A series passed from a row inside
    a block resumes there from ``init_*`` (that row's sums in the whole series; NaN: not resumed),
    its block's first row lying before the rows passed (``first`` = -1)."""
    n = len(x)
    ref = np.empty(n)
    p1 = np.empty(n)
    p2 = np.empty(n)
    first = np.empty(n, np.int64)
    for i in range(n):
        if i == start[i] and init_ref[i] == init_ref[i]:
            first[i] = -1
            ref[i] = init_ref[i]
            p1[i] = init_p1[i]
            p2[i] = init_p2[i]
        elif i == start[i] or block[i] != block[i - 1]:
            first[i] = i
            ref[i] = x[i]
            p1[i] = 0.0
            p2[i] = 0.0
        else:
            first[i] = first[i - 1]
            ref[i] = ref[i - 1]
            d = x[i] - ref[i]
            p1[i] = p1[i - 1] + d
            p2[i] = p2[i - 1] + d * d
    return ref, p1, p2, first


@njit(cache=True, nogil=True)
def anchored_mean_std(ref, p1, p2, first, start, k):  # pragma: no cover - compiled
    """Mean and sample standard deviation (ddof 1) of the last ``k`` values of the series, for
    long windows (hundreds of rows), from ``anchored_prefix``: a window adds up the pieces of the
    blocks it covers about its last block's reference. A value thus depends only on the rows of
    the blocks its window touches, never on where the series was read from, and the centred sums
    keep the variance accurate for prices far from zero. In a resumed series a window needs the
    row before it too."""
    n = len(ref)
    mean = np.empty(n)
    std = np.empty(n)
    for i in range(n):
        lo = i - k + 1
        s = start[i]
        if lo < s or (first[s] < 0 and lo == s):
            mean[i] = NAN
            std[i] = NAN
            continue
        c = ref[i]
        s1 = 0.0
        s2 = 0.0
        j = i
        while j >= lo:
            a = max(first[j], lo)
            m = j - a + 1
            q1 = p1[j] - (p1[a - 1] if a > first[j] else 0.0)
            q2 = p2[j] - (p2[a - 1] if a > first[j] else 0.0)
            dc = ref[j] - c
            s1 += q1 + m * dc
            s2 += q2 + 2.0 * dc * q1 + m * dc * dc
            j = a - 1
        mean[i] = c + s1 / k
        var = (s2 - s1 * s1 / k) / (k - 1) if k > 1 else NAN
        std[i] = np.sqrt(var) if var > 0.0 else 0.0 if var == var else NAN
    return mean, std


@njit(cache=True, nogil=True)
def ema_seeded(x, start, pos, init, period, seed_offset, k, wilder):  # pragma: no cover - compiled
    """TA-Lib's recursive smoothing, with TA-Lib's operation order so results match it to the
    last bits: NaN before position ``seed_offset`` of the series (``pos``: each row's position in
    its series); there, the mean of the ``period`` values ending at it; then
    ``y = (x - y) * k + y`` (EMA, k = 2/(n+1)) or ``y = (y * (n - 1) + x) / n`` (Wilder).
    A series passed from a later row on (its first row's ``pos`` past ``seed_offset``) resumes
    from ``init`` at that row: the value the whole series has there."""
    n = len(x)
    out = np.empty(n)
    y = NAN
    for i in range(n):
        p = pos[i]
        if p < seed_offset:
            out[i] = NAN
            continue
        if i == start[i] and p > seed_offset:
            y = init[i]
        elif p == seed_offset:
            acc = 0.0
            for j in range(i - period + 1, i + 1):
                acc += x[j]
            y = acc / period
        elif wilder:
            y = (y * (period - 1) + x[i]) / period
        else:
            y = (x[i] - y) * k + y
        out[i] = y
    return out


@njit(cache=True, nogil=True)
def window_sums_by_time(x, ts, start, span_us):  # pragma: no cover - compiled
    """Sum of ``x`` over the token's rows with ts in (ts_i - span, ts_i]. A long span holds
    thousands of rows, so sums come from prefix sums; these restart at every epoch multiple of the
    span, and a window takes its current block's prefix plus the tail of the previous block. A
    value thus depends only on the rows of two span-aligned blocks, never on where the series was
    read from (a partition with its warm-up gives the bits of the continuous series)."""
    n = len(x)
    out = np.empty(n)
    prefix = np.empty(n)  # sum of x over the row's block up to and including the row
    block_first = np.empty(n, np.int64)  # the first row of the row's block
    for i in range(n):
        if i == start[i] or ts[i - 1] // span_us != ts[i] // span_us:
            prefix[i] = x[i]
            block_first[i] = i
        else:
            prefix[i] = prefix[i - 1] + x[i]
            block_first[i] = block_first[i - 1]
    lo = 0
    for i in range(n):
        if i == start[i]:
            lo = i
        while ts[lo] <= ts[i] - span_us:
            lo += 1
        total = prefix[i]
        first = block_first[i]
        if lo < first:
            # Rows lo..first-1 lie in the previous block: its total minus what precedes lo.
            before = prefix[lo - 1] if lo > block_first[lo] else 0.0
            total += prefix[first - 1] - before
        out[i] = total
    return out


@njit(cache=True, nogil=True)
def bucket_sums(codes, ts, price, weights, step_us):  # pragma: no cover - compiled
    """Per run of rows of one token in one bucket of ``step_us`` (rows in token and time order):
    code, bucket start, count, Σprice, max price and Σ of each row of ``weights``, all in one
    pass, summed in row order."""
    n = len(ts)
    m = 0
    for i in range(n):
        if i == 0 or codes[i] != codes[i - 1] or ts[i] // step_us != ts[i - 1] // step_us:
            m += 1
    code = np.empty(m, np.int64)
    start = np.empty(m, np.int64)
    cnt = np.zeros(m, np.int64)
    price_sum = np.zeros(m)
    price_max = np.empty(m)
    weight_sum = np.zeros((weights.shape[0], m))
    j = -1
    for i in range(n):
        p = price[i]
        if i == 0 or codes[i] != codes[i - 1] or ts[i] // step_us != ts[i - 1] // step_us:
            j += 1
            code[j] = codes[i]
            start[j] = (ts[i] // step_us) * step_us
            price_max[j] = p
        elif p > price_max[j]:
            price_max[j] = p
        cnt[j] += 1
        price_sum[j] += p
        for w in range(weights.shape[0]):
            weight_sum[w, j] += weights[w, i]
    return code, start, cnt, price_sum, price_max, weight_sum


@njit(cache=True, nogil=True)
def last_key_at_or_before(left, right):  # pragma: no cover - compiled
    """For each key of ``left``, the index of the last key of ``right`` at or before it, or -1
    (``np.searchsorted(right, left, "right") - 1``), merging the two sorted arrays in one pass."""
    n = len(left)
    m = len(right)
    out = np.empty(n, np.int64)
    j = -1
    for i in range(n):
        x = left[i]
        while j + 1 < m and right[j + 1] <= x:
            j += 1
        out[i] = j
    return out


@njit(cache=True, nogil=True)
def last_at_or_before(ts, start, offset_us):  # pragma: no cover - compiled
    """Index of the token's last row with ts <= ts_i - offset, or -1."""
    n = len(ts)
    out = np.empty(n, np.int64)
    j = -1
    for i in range(n):
        s = start[i]
        if i == s:
            j = s - 1
        target = ts[i] - offset_us
        while j + 1 <= i and ts[j + 1] <= target:
            j += 1
        out[i] = j if j >= s else -1
    return out


@njit(cache=True, nogil=True)
def infinite_to_nan(x):  # pragma: no cover - compiled
    """In place: ±inf becomes NaN (a ratio with a zero denominator has no value)."""
    for i in range(len(x)):
        v = x[i]
        if v - v != 0.0:  # inf - inf and NaN - NaN are NaN
            x[i] = NAN
    return x
