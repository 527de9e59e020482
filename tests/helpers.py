"""Running the real assets in process."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import dagster as dg

from alevor_assets.defs.features.assets import features
from alevor_assets.defs.market_data.assets import bars, labelled_events, raw_trades, tokens
from alevor_assets.defs.modeling.assets import build_spec_assets
from alevor_assets.lib.specs import model_specs
from alevor_assets.defs.serving.assets import build_alerts_asset
from alevor_assets.defs.sql.assets import SQL_ASSETS

# The small test market has bars up to 5m, so these graphs carry the 2-second pump detector only;
# the slow CLI test runs the shipped graph with every spec.
PUMP_SPEC = next(s for s in model_specs() if s.name == "pump_detector_2s")
SPEC_ASSETS = build_spec_assets(PUMP_SPEC)
DATA_ASSETS = [tokens, labelled_events, raw_trades, bars, *SQL_ASSETS, features, *SPEC_ASSETS[:2]]
ALL_ASSETS = [*DATA_ASSETS, *SPEC_ASSETS[2:], build_alerts_asset([PUMP_SPEC])]


def materialize_range(
    first: date,
    last: date,
    *,
    resources: dict,
    instance: dg.DagsterInstance,
    assets: Sequence = ALL_ASSETS,
    selection=None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """One run over ``first..last`` (a single-run backfill), like the CLI's --partition-range."""
    return dg.materialize(
        list(assets),
        instance=instance,
        resources=resources,
        selection=selection,
        raise_on_error=raise_on_error,
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
    )


def snapshot(root: Path) -> dict[str, bytes]:
    """Every Parquet file under ``root`` with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}
