"""``predict`` and ``alerts``: what the promoted models said, for a range of days."""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from alevor_assets.cli.core import run_range, storage_from_env
from alevor_assets.lib.warehouse import days_between


def add_commands(sub: Any) -> None:
    predict = sub.add_parser("predict", help="the predictions of a spec over a range of days (materialized if missing)")
    predict.add_argument("--spec", required=True, help="the model spec")
    predict.add_argument("--start", required=True, type=date.fromisoformat, help="first day (YYYY-MM-DD)")
    predict.add_argument("--end", required=True, type=date.fromisoformat, help="last day (YYYY-MM-DD)")
    predict.add_argument("--version", type=int, default=None,
                         help="score with this registered version instead of the promoted one (not stored)")
    predict.add_argument("--output", type=Path, default=None, help="write every row to a .csv or .parquet file")
    predict.set_defaults(func=predict_command)
    alerts = sub.add_parser("alerts", help="the detectors' alerts over a range of days")
    alerts.add_argument("--start", required=True, type=date.fromisoformat, help="first day (YYYY-MM-DD)")
    alerts.add_argument("--end", required=True, type=date.fromisoformat, help="last day (YYYY-MM-DD)")
    alerts.add_argument("--spec", default=None, help="only this detector's alerts")
    alerts.add_argument("--output", type=Path, default=None, help="write every alert to a .csv or .parquet file")
    alerts.set_defaults(func=alerts_command)


def read_alerts(storage: Any, start: date, end: date, spec: str | None = None) -> pl.DataFrame:
    """The alerts of the days ``start..end`` (as far as they were built), oldest first."""
    from alevor_assets.lib.alerts import ALERT_SCHEMA

    frames = [storage.warehouse.read_partition("alerts", d) for d in days_between(start, end)
              if storage.warehouse.partition_path("alerts", d).exists()]
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=ALERT_SCHEMA)
    return frame.filter(pl.col("spec") == spec) if spec else frame


def alerts_command(args: argparse.Namespace) -> int:
    frame = read_alerts(storage_from_env(), args.start, args.end, args.spec)
    if args.output is None:
        print(f"{frame.height} alert(s) {args.start}...{args.end}" + (f" of {args.spec}" if args.spec else ""))
    return write_or_print(frame.sort("alerted_at", "token"), args.output, "alerts")


def write_or_print(frame: pl.DataFrame, output: Path | None, what: str) -> int:
    """Write ``frame`` to ``output`` (CSV or Parquet by suffix), or print it as a table."""
    if output is not None:
        if output.suffix == ".parquet":
            frame.write_parquet(output)
        elif output.suffix == ".csv":
            frame.write_csv(output)
        else:
            print(f"--output must end in .csv or .parquet, got {output}", file=sys.stderr)
            return 2
        print(f"wrote {frame.height} {what} to {output}")
        return 0
    with pl.Config(tbl_rows=40, tbl_cols=20, fmt_str_lengths=60, tbl_width_chars=220):
        print(frame)
    return 0


def _missing_blocks(days: list[date], present: set[date]) -> list[tuple[date, date]]:
    """Contiguous runs of the days not in ``present``."""
    blocks: list[tuple[date, date]] = []
    for day in days:
        if day in present:
            continue
        if blocks and blocks[-1][1] == day - timedelta(days=1):
            blocks[-1] = (blocks[-1][0], day)
        else:
            blocks.append((day, day))
    return blocks


def predict_command(args: argparse.Namespace) -> int:
    from alevor_assets.lib.day_builds import day_predictions
    from alevor_assets.lib.serving import load_serving_model
    from alevor_assets.lib.specs import model_specs

    specs = {s.name: s for s in model_specs()}
    if args.spec not in specs:
        print(f"unknown spec {args.spec!r}; served: {', '.join(sorted(specs))}", file=sys.stderr)
        return 2
    spec, storage = specs[args.spec], storage_from_env()
    wh, days = storage.warehouse, days_between(args.start, args.end)
    if args.version is not None:
        # Another version than the promoted one: scored here from the stored features, never
        # written over the asset, which holds what the promoted version said.
        model = load_serving_model(storage.registry, spec.name, args.version)
        scored = [d for d in days if wh.partition_path("features", d, {"interval": spec.interval}).exists()]
        frames = [day_predictions(wh, spec, d, lambda: model)[0].drop("date") for d in scored]
    else:
        present = set(wh.available_days(spec.predictions_asset))
        for first, last in _missing_blocks(days, present):
            print(f"materializing {spec.predictions_asset} for {first}...{last}", file=sys.stderr, flush=True)
            result = run_range(first, last, [spec.predictions_asset])
            if not result.success:
                print(f"run {result.run_id} failed; materialize features for {first}...{last} first", file=sys.stderr)
                return 1
        built = set(wh.available_days(spec.predictions_asset))
        frames = [wh.read_partition(spec.predictions_asset, d) for d in days if d in built]
    if not frames:
        print(f"no predictions of {spec.name} for {args.start}...{args.end}: no features for those days", file=sys.stderr)
        return 1
    frame = pl.concat(frames).sort("ts", "token")
    return write_or_print(frame, args.output, "predictions")
