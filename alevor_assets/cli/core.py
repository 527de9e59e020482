"""The demo run, and a look at the specs and the model registry."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from alevor_assets.lib.config import pipeline_settings

if TYPE_CHECKING:
    from alevor_assets.defs.resources import AlevorStorage


def run_range(first: date, last: date, selection: list[str] | None = None) -> Any:
    """One run of ``selection`` (default: every asset) over the days ``first..last``, on the
    instance in $DAGSTER_HOME (an ephemeral one without it), as `--partition-range` runs it."""
    import dagster as dg

    from alevor_assets.definitions import defs

    job = defs().resolve_implicit_global_asset_job_def()
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    return job.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey(k) for k in selection] if selection else None,
        tags={"dagster/asset_partition_range_start": first.isoformat(), "dagster/asset_partition_range_end": last.isoformat()},
        raise_on_error=False,
    )


def storage_from_env() -> AlevorStorage:
    from alevor_assets.defs.resources import build_resources

    return build_resources()["storage"].process_config_and_initialize()


def demo(args: argparse.Namespace) -> int:
    from alevor_assets.defs.partitions import start_date

    first = start_date()
    last = first + timedelta(days=(args.days or int(pipeline_settings()["demo"]["days"])) - 1)
    print(f"materializing every asset for {first}...{last} (one run)", flush=True)
    started = time.monotonic()
    result = run_range(first, last)
    elapsed = time.monotonic() - started
    if not result.success:
        print(f"run {result.run_id} failed after {elapsed:.1f}s; see the log above", file=sys.stderr)
        return 1
    storage = storage_from_env()
    print(f"\nrun {result.run_id} succeeded in {elapsed:.1f}s; ALEVOR_HOME={storage.root}")
    _print_models(storage)
    _print_alerts(storage, first, last)
    return 0


def _print_alerts(storage: AlevorStorage, first: date, last: date) -> None:
    import polars as pl

    from alevor_assets.cli.serving import read_alerts

    alerts = read_alerts(storage, first, last)
    print(f"\n{alerts.height} alert(s) over {first}...{last}" + (": the first ones" if alerts.height else ""))
    if alerts.height:
        with pl.Config(tbl_rows=10, tbl_cols=8, fmt_str_lengths=70, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
            print(alerts.sort("alerted_at").head(10).select("alerted_at", "spec", "token", "score", "threshold", "version", "top_features"))
    print("all of them: python -m alevor_assets alerts --start", first, "--end", last)


def _print_models(storage: AlevorStorage) -> None:
    models = storage.registry.list_models()
    if models.height == 0:
        print("no models registered yet")
        return
    latest = models.group_by("name").agg(models.columns[1:]).sort("name")
    for row in latest.iter_rows(named=True):
        version = row["version"][-1]
        report = storage.root / "models" / row["name"] / f"v{version}" / "report.md"
        print(
            f"{row['name']} v{version}: {row['status'][-1]}, {row['primary_metric'][-1]} = "
            f"{row['primary_value'][-1]}\n  validation report: {report}"
        )


def models(args: argparse.Namespace) -> int:
    import json

    import polars as pl

    storage = storage_from_env()
    models = storage.registry.list_models().with_columns(
        pl.col("top_features").map_elements(lambda t: ", ".join(json.loads(t)[:3]) if t else "", return_dtype=pl.Utf8)
    )
    with pl.Config(tbl_rows=200, tbl_cols=20, fmt_str_lengths=48, tbl_width_chars=220, tbl_hide_dataframe_shape=True):
        print(models.select("name", "version", "status", "trainer", "interval", "primary_metric", "primary_value", "gate_passed", "top_features"))
    return 0


def load_sample(args: argparse.Namespace) -> int:
    from datetime import date

    from alevor_assets.defs.partitions import start_date
    from alevor_assets.defs.resources import SyntheticSource
    from alevor_assets.lib.sources.pg_sample import load_sample
    from alevor_assets.lib.sources.postgres import redact

    url = args.url or os.environ.get("ALEVOR_PG_URL")
    if not url:
        print("set ALEVOR_PG_URL or pass --url", file=sys.stderr)
        return 2
    first = date.fromisoformat(args.start) if args.start else start_date()
    cfg = SyntheticSource.from_file(first).config()
    days = args.days or int(pipeline_settings()["demo"]["days"])
    counts = load_sample(url, cfg, first, days)
    print(
        f"loaded {counts['trades']} trades of {counts['tokens']} tokens and {counts['events']} labelled events "
        f"for {first}..{first + timedelta(days=days - 1)} into {redact(url)} "
        '(tables "Token", "Trade", "LabelledEvent")'
    )
    return 0


def specs(args: argparse.Namespace) -> int:
    from alevor_assets.lib.specs import spec_source

    source = spec_source()
    rows = [
        (s.name, s.interval, s.label.strategy, s.trainer.name, f"{s.window_days} d" + (f" to {s.window_end}" if s.window_end else ""),
         "shipped" if s.shipped else "ALEVOR_SPECS", s.path)
        for s in source.specs
    ]
    rows += [(name, "", "", "", "", "switched off", path) for name, path in sorted(source.switched_off.items())]
    header = ("spec", "interval", "strategy", "trainer", "window", "origin", "file")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    return 0


def feature_table(args: argparse.Namespace) -> int:
    from alevor_assets.lib.features import feature_table_markdown

    print(feature_table_markdown())
    return 0
