"""The CPU cores this process may use, and work split over them in threads."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which a container or ``taskset`` narrows)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def in_threads(fn: Callable[[T], R], parts: Sequence[T], threads: int) -> list[R]:
    """``fn`` over ``parts`` in up to ``threads`` threads (for work that releases the GIL: NumPy,
    Polars and the compiled kernels); results in the order of ``parts``."""
    if len(parts) <= 1 or threads <= 1:
        return [fn(p) for p in parts]
    with ThreadPoolExecutor(min(threads, len(parts))) as pool:
        return list(pool.map(fn, parts))
