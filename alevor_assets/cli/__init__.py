"""``python -m alevor_assets``: the demo run, the specs, the model registry, predictions and alerts,
Celery workers and backfills."""

from __future__ import annotations

import argparse

from alevor_assets.cli import core, live, scaleout, serving


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alevor_assets")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="materialize every asset for the demo range in one run")
    demo.add_argument("--days", type=int, default=None, help="days from ALEVOR_START_DATE (default: pipeline.yaml)")
    demo.set_defaults(func=core.demo)
    models = sub.add_parser("models", help="list every registered model version")
    models.set_defaults(func=core.models)
    specs = sub.add_parser("specs", help="list the model specs served (shipped and ALEVOR_SPECS) and their files")
    specs.set_defaults(func=core.specs)
    sample = sub.add_parser("load-sample", help="load synthetic trades into PostgreSQL Token/Trade tables")
    sample.add_argument("--url", default=None, help="libpq URL (default: ALEVOR_PG_URL); the database is created if missing")
    sample.add_argument("--days", type=int, default=None, help="days to load (default: the demo's, pipeline.yaml)")
    sample.add_argument("--start", default=None, help="first day (default: ALEVOR_START_DATE)")
    sample.set_defaults(func=core.load_sample)
    serving.add_commands(sub)
    live.add_commands(sub)
    scaleout.add_commands(sub)
    table = sub.add_parser("feature-table", help="print the README's feature table (Markdown)")
    table.set_defaults(func=core.feature_table)
    args = parser.parse_args(argv)
    return args.func(args)
