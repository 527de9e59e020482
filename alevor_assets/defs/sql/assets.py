"""Assets defined in SQL: every file in ``dbt_like_sql/`` becomes a daily-partitioned asset."""

from collections.abc import Iterator

import dagster as dg
import polars as pl

from alevor_assets.defs.automation import follow_upstream
from alevor_assets.defs.partitions import daily_asset
from alevor_assets.defs.publishing import PartitionBatch, contract_check_spec, partition_days
from alevor_assets.defs.resources import AlevorStorage
from alevor_assets.lib.config import SQL_DIR
from alevor_assets.lib.contract import check_contract
from alevor_assets.lib.schemas import DATE_COLUMN, sql_asset_schema
from alevor_assets.lib.sql_assets import SqlAsset, load_sql_assets, run_sql_asset


def build_sql_asset(asset: SqlAsset) -> dg.AssetsDefinition:
    checks = [contract_check_spec(asset.name, f"Keys {list(asset.unique)} non-null and unique; floats finite or null.")]

    @daily_asset(
        name=asset.name,
        group=asset.group,
        check_specs=checks,
        deps=sorted({i.asset for i in asset.inputs.values()}),
        automation_condition=follow_upstream(),
        kinds=("duckdb", "sql"),
        description=f"{asset.description}\n\nDefined in `dbt_like_sql/{asset.path.name}`.",
        metadata={"sql": dg.MetadataValue.md(f"```sql\n{asset.query}\n```")},
    )
    def _sql(context: dg.AssetExecutionContext, storage: AlevorStorage) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        wh = storage.warehouse
        batch = PartitionBatch(storage, asset.name, context.run.run_id, sort_by=list(asset.unique))
        for day in partition_days(context):
            files = {alias: [wh.require(i.asset, day, i.keys)] for alias, i in asset.inputs.items()}
            frame = run_sql_asset(asset, files, day).with_columns(pl.lit(day).alias(DATE_COLUMN))
            schema = sql_asset_schema(asset.name, dict(frame.schema), asset.unique)
            batch.add(day, frame, check_contract(asset.name, frame, schema=schema))
        yield from batch.finish(context)

    return _sql


SQL_ASSETS = [build_sql_asset(a) for a in load_sql_assets(SQL_DIR)]
