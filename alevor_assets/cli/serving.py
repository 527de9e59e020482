"""``predict`` and ``alerts``: what the promoted models said, for a range of days."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta, timezone
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
    alerts = sub.add_parser("alerts", help="the detectors' alerts (daily and live) over a range of days or the last minutes")
    alerts.add_argument("--start", type=date.fromisoformat, default=None, help="first day (YYYY-MM-DD)")
    alerts.add_argument("--end", type=date.fromisoformat, default=None, help="last day (YYYY-MM-DD)")
    alerts.add_argument("--since", default=None, help="instead of days: alerts whose bar closed in the last DURATION (e.g. 10m, 2h)")
    alerts.add_argument("--spec", default=None, help="only this detector's alerts")
    alerts.add_argument("--output", type=Path, default=None, help="write every alert to a .csv or .parquet file")
    alerts.set_defaults(func=alerts_command)


def read_alerts(storage: Any, start: date, end: date, spec: str | None = None) -> pl.DataFrame:
    """The alerts of the days ``start..end`` (as far as they were built) and the live service's
    alerts of those days, with ``mode`` batch or live, oldest first."""
    from alevor_assets.lib.live.store import LIVE_ALERT_SCHEMA, LiveStore

    frames = [storage.warehouse.read_partition("alerts", d) for d in days_between(start, end)
              if storage.warehouse.partition_path("alerts", d).exists()]
    frames = [f.with_columns(pl.lit("batch").alias("mode"), pl.lit(None, LIVE_ALERT_SCHEMA["written_at"]).alias("written_at"))
              .select(list(LIVE_ALERT_SCHEMA)) for f in frames]
    live = LiveStore(storage.root).alerts().filter(pl.col("ts").dt.date().is_between(start, end))
    frame = pl.concat([*frames, live]).cast(LIVE_ALERT_SCHEMA)
    return frame.filter(pl.col("spec") == spec) if spec else frame


def alerts_command(args: argparse.Namespace) -> int:
    storage = storage_from_env()
    if args.since is not None:
        from alevor_assets.lib.intervals import duration_us

        try:
            since = datetime.now(timezone.utc) - timedelta(microseconds=duration_us(args.since))
        except ValueError as exc:
            print(f"--since: {exc}", file=sys.stderr)
            return 2
        frame = read_alerts(storage, since.date(), datetime.now(timezone.utc).date(), args.spec)
        frame = frame.filter(pl.col("alerted_at") >= since)
        what = f"since {since:%Y-%m-%d %H:%M:%S} UTC"
    elif args.start is None or args.end is None:
        print("give --start and --end, or --since", file=sys.stderr)
        return 2
    else:
        frame, what = read_alerts(storage, args.start, args.end, args.spec), f"{args.start}...{args.end}"
    if args.output is None:
        print(f"{frame.height} alert(s) {what}" + (f" of {args.spec}" if args.spec else ""))
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
