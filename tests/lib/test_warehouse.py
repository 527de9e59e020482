from datetime import date

import polars as pl
import pytest

from alevor_assets.lib.publish import Staging
from alevor_assets.lib.warehouse import EmptySchemaError, MissingPartitionError, Warehouse

DAY = date(2024, 1, 2)


def _frame():
    return pl.DataFrame({"token": ["b", "a"], "ts": [2, 1], "date": [DAY, DAY], "_origin": ["x:1", "x:2"]})


def test_hive_layout_sorted_rows_and_internal_columns_dropped(tmp_path):
    wh = Warehouse(tmp_path / "warehouse")
    written = wh.write_partition("bars", DAY, _frame(), {"interval": "2s"}, sort_by=["token"])
    assert written.path == tmp_path / "warehouse/bars/interval=2s/date=2024-01-02/part-0.parquet"
    back = pl.read_parquet(written.path)
    assert back.columns == ["token", "ts"] and back["token"].to_list() == ["a", "b"]
    again = wh.write_partition("bars", DAY, _frame(), {"interval": "2s"}, sort_by=["token"])
    assert again.path.read_bytes() == written.path.read_bytes()
    assert not list(written.path.parent.glob(".*"))  # no temporary files left behind


def test_staged_files_are_invisible_until_published(tmp_path):
    wh = Warehouse(tmp_path / "warehouse")
    area = Staging(wh, "run1", "raw_trades")
    staged = area.stage(DAY, _frame())
    assert not wh.partition_path("raw_trades", DAY).exists()
    assert not list((tmp_path / "warehouse").rglob("*.parquet"))
    area.commit([staged])
    assert wh.read_partition("raw_trades", DAY).height == 2
    area.discard()
    assert not (tmp_path / "staging" / "run1").exists()


def test_missing_partition_error_names_what_to_materialize(tmp_path):
    wh = Warehouse(tmp_path / "warehouse")
    with pytest.raises(MissingPartitionError, match="bars has no published partition for 2024-01-02, interval=1m"):
        wh.read_partition("bars", DAY, {"interval": "1m"})
    with pytest.raises(ValueError):
        wh.partition_path("bars", DAY, {"interval": "../x"})


def test_a_partition_file_without_columns_is_refused_everywhere(tmp_path):
    # DuckDB cannot open a Parquet file without columns ("Need at least one non-root column"):
    # no path may write one, even for a day without rows.
    wh = Warehouse(tmp_path / "warehouse")
    with pytest.raises(EmptySchemaError, match=r"features/interval=1m/date=2024-01-02/.*needs its asset's columns"):
        wh.write_partition("features", DAY, pl.DataFrame(), {"interval": "1m"})
    with pytest.raises(EmptySchemaError, match="needs its asset's columns"):
        wh.stage("run1", "features", DAY, pl.DataFrame(), {"interval": "1m"})
    writer = wh.stage_writer("run1", "features", DAY, {"interval": "1m"})
    writer.write(pl.DataFrame())
    with pytest.raises(EmptySchemaError, match="needs its asset's columns"):
        writer.close()
    # With the schema, an empty day is a normal file that readers open.
    writer = wh.stage_writer("run2", "features", DAY, {"interval": "1m"})
    staged = writer.close({"token": pl.Utf8, "x": pl.Float64})
    assert pl.read_parquet(staged.staged).schema == pl.Schema({"token": pl.Utf8, "x": pl.Float64})
    assert not list((tmp_path / "warehouse").rglob("*.parquet"))
