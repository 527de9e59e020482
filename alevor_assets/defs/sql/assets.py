"""Assets defined in SQL: every file in ``dbt_like_sql/`` becomes a daily-partitioned asset."""

from collections.abc import Iterator

import dagster as dg
import pandera.polars as pa
import polars as pl

from alevor_assets.defs.automation import follow_upstream
from alevor_assets.defs.partitions import daily_partitions, single_run
from alevor_assets.defs.publishing import PartitionBatch, contract_check_spec, partition_days
from alevor_assets.defs.resources import AlevorStorage
from alevor_assets.lib.config import SQL_DIR
from alevor_assets.lib.schemas import DATE_COLUMN, validate
from alevor_assets.lib.sql_assets import SqlAsset, load_sql_assets, run_sql_asset


def _schema(asset: SqlAsset, frame: pl.DataFrame) -> pa.DataFrameSchema:
    """Key columns non-null and unique; floats finite or null."""
    columns = {}
    for name, dtype in frame.schema.items():
        if name == DATE_COLUMN:
            continue
        checks = [pa.Check(lambda d: d.lazyframe.select(pl.col(d.key).is_finite() | pl.col(d.key).is_null()), name="finite or null")] if dtype == pl.Float64 else []
        columns[name] = pa.Column(dtype, nullable=name not in asset.unique, checks=checks)
    return pa.DataFrameSchema(columns, unique=list(asset.unique) or None, name=asset.name)


def build_sql_asset(asset: SqlAsset) -> dg.AssetsDefinition:
    @dg.asset(
        name=asset.name,
        group_name=asset.group,
        partitions_def=daily_partitions,
        backfill_policy=single_run,
        deps=sorted({i.asset for i in asset.inputs.values()}),
        automation_condition=follow_upstream(),
        check_specs=[contract_check_spec(asset.name, f"Keys {list(asset.unique)} non-null and unique; floats finite or null.")],
        output_required=False,
        description=f"{asset.description}\n\nDefined in `dbt_like_sql/{asset.path.name}`.",
        kinds={"duckdb", "sql"},
        metadata={"sql": dg.MetadataValue.md(f"```sql\n{asset.query}\n```")},
    )
    def _sql(context: dg.AssetExecutionContext, storage: AlevorStorage) -> Iterator:
        wh = storage.warehouse
        batch = PartitionBatch(storage, asset.name, context.run.run_id, sort_by=list(asset.unique))
        for day in partition_days(context):
            files = {alias: [wh.require(i.asset, day, i.keys)] for alias, i in asset.inputs.items()}
            frame = run_sql_asset(asset, files, day).with_columns(pl.lit(day).alias(DATE_COLUMN))
            batch.add(day, frame, validate(asset.name, frame, schema=_schema(asset, frame)))
        yield from batch.finish(context)

    return _sql


SQL_ASSETS = [build_sql_asset(a) for a in load_sql_assets(SQL_DIR)]
