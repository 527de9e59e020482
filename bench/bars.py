"""Bars benchmark: ``python -m bench.bars [--pandas-50m]`` (``make bench`` runs it).

Bars from 10 M trades of 500 tokens and 50 M trades of 2,000 tokens (one synthetic day each,
generated once, in a process of its own before any measurement), through:

- the real ``bars`` asset, Parquet in to Parquet out (2 s bars alone, and the default set of seven
  time intervals plus dollar bars), with its contract check;
- the public API ``resample_trades`` on in-memory trades, against a hand-written DuckDB
  ``GROUP BY`` and pandas ``groupby(token).resample``, on the same data in storage order (by
  token) and in exchange order (by time).

Each measurement runs in a fresh process; "peak MB" is that process's peak resident memory,
data loading included. In-memory engines run twice and report the second run (the first includes
one-off costs such as loading compiled kernels). pandas on 50 M trades needs about 19 GB and
minutes; it runs only with --pandas-50m.
"""

from __future__ import annotations

import sys

from bench._measure import in_subprocess, table

# The shipped pipeline.yaml's bar set: seven time intervals and dollar bars of 50,000.
DEFAULT_SET = "2s,5s,15s,1m,5m,1h,1d,dollar_50000"


def main() -> None:
    rows = []
    for size in ("10m", "50m"):
        in_subprocess("_data", size)
        for label, intervals in (("asset 2s", "2s"), ("asset default set", DEFAULT_SET)):
            r = in_subprocess("_bars_worker", "asset", size, "token", intervals)
            rows.append({"trades": size, "case": label, "seconds": r["seconds"], "peak MB": r["peak_mb"], "bars": r["bars"]})
            print(rows[-1], flush=True)
        for order in ("token", "time"):
            engines = ["api", "duckdb"] + (["pandas"] if size == "10m" or "--pandas-50m" in sys.argv else [])
            measured = {}
            for engine in engines:
                r = in_subprocess("_bars_worker", engine, size, order, "2s")
                measured[engine] = r
                rows.append({"trades": size, "case": f"2s {engine}, {order} order", "seconds": r["seconds"],
                             "first run s": r["first_s"], "peak MB": r["peak_mb"], "bars": r["bars"]})
                print(rows[-1], flush=True)
            api = measured["api"]["seconds"]
            rows.append({"trades": size, "case": f"  api / duckdb ({order} order)", "seconds": api / measured["duckdb"]["seconds"]})
            if "pandas" in measured:
                rows.append({"trades": size, "case": f"  pandas / api ({order} order)", "seconds": measured["pandas"]["seconds"] / api})
    print()
    print(table(rows, ["trades", "case", "seconds", "first run s", "peak MB", "bars"]))


if __name__ == "__main__":
    main()
