"""Bar sequences for the sequence models: for each row, the indices of the last ``length`` bars of
its token that lie in the same frame and are contiguous (consecutive bars, no gap).

The sequence trainers receive each fold's rows as their own frame (the training fold already purged
of rows whose label horizon reaches the validation fold, the validation and test folds after the
embargo), and build windows only from the rows of that frame. A window therefore never reaches
across a fold boundary, into a purged horizon, into another token, or across a gap in the bars: it
stops at the first missing bar and is left-padded (index ``-1``) up to ``length``. Every row gets
a window (its own bar is always the last element), so a sequence model scores exactly the rows a
row model scores.
"""

from __future__ import annotations

import numpy as np

PAD = -1


def bar_step_us(tokens: np.ndarray, ts_us: np.ndarray) -> int:
    """The bar step of a frame: the most common positive gap between consecutive rows of a token
    (``0`` when no token has two rows)."""
    order = np.lexsort((ts_us, tokens))
    t, s = tokens[order], ts_us[order]
    same = t[1:] == t[:-1]
    gaps = (s[1:] - s[:-1])[same]
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        return 0
    values, counts = np.unique(gaps, return_counts=True)
    return int(values[np.argmax(counts)])


def sequence_windows(tokens: np.ndarray, ts_us: np.ndarray, length: int, step_us: int) -> np.ndarray:
    """``n × length`` row indices into the frame (``-1`` = padding), oldest bar first, the row
    itself last. Consecutive elements are bars of the same token exactly ``step_us`` apart
    (``step_us`` 0: only the row itself)."""
    n = len(ts_us)
    if length < 1:
        raise ValueError(f"sequence length must be >= 1, got {length}")
    out = np.full((n, length), PAD, dtype=np.int64)
    if n == 0:
        return out
    order = np.lexsort((ts_us, tokens))
    t, s = tokens[order], ts_us[order]
    # A run starts where the token changes or the gap to the previous bar is not one step.
    starts = np.ones(n, dtype=bool)
    if n > 1:
        starts[1:] = (t[1:] != t[:-1]) | (s[1:] - s[:-1] != step_us) | (step_us <= 0)
    run_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    pos = np.arange(n)
    for lag in range(length):
        src = pos - lag
        ok = src >= run_start
        out[order[ok], length - 1 - lag] = order[src[ok]]
    return out
