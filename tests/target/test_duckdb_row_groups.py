"""Batches fill whole DuckDB row groups, so their rows reach the database file without the write-ahead log."""

from __future__ import annotations

import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from targets.warehouse.arrow_schema import layout_from_schema
from targets.warehouse.duckdb_store import DEFAULT_ROW_GROUP_ROWS, open_encrypted_database, row_group_rows
from targets.warehouse.duckdb_tables import WarehouseWriter

LOADED_AT = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
ROWS = 8192


@pytest.mark.parametrize(
    ("batch_rows", "expected"),
    [(1, None), (2047, None), (2048, 2048), (5000, 4096), (24_576, 24_576), (25_000, 24_576), (122_880, 122_880), (500_000, DEFAULT_ROW_GROUP_ROWS)],
)
def test_row_group_size_rounds_down(batch_rows: int, expected: int | None) -> None:
    assert row_group_rows(batch_rows) == expected


def log_bytes_after_one_batch(folder: Path, row_group_size: int | None) -> int:
    """Commit one batch of `ROWS` rows and return the size of the write-ahead log it left."""
    folder.mkdir()
    path = folder / "w.duckdb"
    connection = open_encrypted_database(
        path, b"k" * 32, read_only=False, temp_directory=folder / "spill", row_group_size=row_group_size
    )
    connection.execute("USE wh")
    connection.execute("SET wal_autocheckpoint = '1GB'")
    writer = WarehouseWriter(connection, "stripe")
    writer.ensure_ledger()
    layout = writer.ensure_table(
        layout_from_schema("charges", {"properties": {"id": {"type": "string"}, "note": {"type": "string"}}}, ["id"])
    )
    writer.checkpoint()
    table = pa.table(
        {
            "id": [f"ch_{number:024d}" for number in range(ROWS)],
            "note": [f"note {number} of the charge" for number in range(ROWS)],
            "_loaded_at": pa.array([LOADED_AT] * ROWS, pa.timestamp("us", tz="UTC")),
        }
    )

    writer.write_batch(layout, table, "parquet/stripe/charges/part-1.parquet", LOADED_AT)

    assert connection.execute("SELECT count(*) FROM stripe.charges").fetchone() == (ROWS,)
    size = (folder / "w.duckdb.wal").stat().st_size
    connection.close()
    return size


def test_whole_row_groups_bypass_log(tmp_path: Path) -> None:
    through_log = log_bytes_after_one_batch(tmp_path / "default", None)
    whole_groups = log_bytes_after_one_batch(tmp_path / "sized", 4096)

    # The log then records where the row groups are, not the rows themselves (about 40 bytes each).
    assert through_log > ROWS * 20
    assert whole_groups < through_log / 4
