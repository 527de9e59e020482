"""Features benchmark: ``python -m bench.features`` (``make bench`` runs it).

Features on the 2-second bars of the 10 M-trade day: ``compute_features`` with the bar-based
families only and with everything (rush-trade and La Morgia features from the trades,
multi-timeframe context), against pandas computing a core set the way users write it today and
``compute_features`` asked for exactly that set (the issue's "pandas set" goal: at least 5x).
Each measurement runs in a fresh process and reports its second run and peak memory.
"""

from __future__ import annotations

from bench._measure import in_subprocess, table


def main() -> None:
    rows = []
    for engine in ("alevor_base", "alevor_full", "pandas", "alevor_pandas_set"):
        r = in_subprocess("_features_worker", engine, "10m")
        rows.append({"engine": engine, "bars": r["rows"], "features": r["features"], "seconds": r["seconds"],
                     "first run s": r["first_s"], "peak MB": r["peak_mb"]})
        print(rows[-1], flush=True)
    base, pandas, same_set = rows[0]["seconds"], rows[2]["seconds"], rows[3]["seconds"]
    rows.append({"engine": "pandas / alevor_base", "seconds": pandas / base})
    rows.append({"engine": "pandas / alevor_pandas_set", "seconds": pandas / same_set})
    print()
    print(table(rows, ["engine", "bars", "features", "seconds", "first run s", "peak MB"]))


if __name__ == "__main__":
    main()
