"""The writer's DuckDB memory limit starts small and doubles when a batch needs more."""

from __future__ import annotations

import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from targets.warehouse.arrow_schema import layout_from_schema
from targets.warehouse.duckdb_memory import MemoryBudget
from targets.warehouse.duckdb_store import open_encrypted_database
from targets.warehouse import duckdb_tables
from targets.warehouse.duckdb_tables import WarehouseWriter

ROWS = 200_000


def test_batch_beyond_limit_grows_budget_and_commits(tmp_path: Path) -> None:
    connection = open_encrypted_database(tmp_path / "w.duckdb", b"k" * 32, read_only=False, temp_directory=tmp_path / "spill")
    connection.execute("USE wh")
    connection.execute("SET threads = 1")
    budget = MemoryBudget(connection, start_mb=2)
    writer = WarehouseWriter(connection, "stripe", budget)
    writer.ensure_ledger()
    layout = writer.ensure_table(
        layout_from_schema("charges", {"properties": {"id": {"type": "string"}, "note": {"type": "string"}}}, ["id"])
    )
    loaded_at = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    table = pa.table(
        {
            "id": [f"ch_{number:024d}" for number in range(ROWS)],
            "note": ["a note of some length"] * ROWS,
            "_loaded_at": pa.array([loaded_at] * ROWS, pa.timestamp("us", tz="UTC")),
        }
    )

    writer.write_batch(layout, table, "parquet/stripe/charges/part-1.parquet", loaded_at)

    assert budget.limit_mb > 2
    assert connection.execute("SELECT count(*) FROM stripe.charges").fetchone() == (ROWS,)
    assert connection.execute("SELECT rows FROM _spendlake.loads").fetchall() == [(ROWS,)]
    connection.close()


def test_commit_runs_above_small_limit(tmp_path: Path) -> None:
    connection = open_encrypted_database(
        tmp_path / "w.duckdb", b"k" * 32, read_only=False, temp_directory=tmp_path / "spill", row_group_size=4096
    )
    connection.execute("USE wh")
    connection.execute("SET threads = 1")
    budget = MemoryBudget(connection, start_mb=8)
    writer = WarehouseWriter(connection, "stripe", budget)
    writer.ensure_ledger()
    schema = {"properties": {"id": {"type": "string"}, "note": {"type": "string"}}}
    # Keyless, so that the batch's statements are the insert and the ledger row only.
    layout = writer.ensure_table(layout_from_schema("charges", schema, []))
    writer.write_batch(layout, notes(0, 8192), "parquet/stripe/charges/part-1.parquet", LOADED_AT)

    # 3,000 rows are less than a row group, so they reach the table when the transaction commits,
    # which needs more than 3 MB (the statements before it do not).
    connection.execute("SET memory_limit = '3MB'")
    budget.limit_mb = 3
    writer.write_batch(layout, notes(8192, 3000), "parquet/stripe/charges/part-2.parquet", LOADED_AT)

    assert budget.limit_mb == 3
    assert connection.execute("SELECT current_setting('memory_limit')").fetchone() == ("2.8 MiB",)
    connection.execute("SET memory_limit = '64MB'")
    assert connection.execute("SELECT count(*), count(DISTINCT id) FROM stripe.charges").fetchone() == (11_192, 11_192)
    assert connection.execute("SELECT rows FROM _spendlake.loads ORDER BY rows").fetchall() == [(3000,), (8192,)]
    connection.close()


LOADED_AT = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def notes(start: int, rows: int) -> pa.Table:
    return pa.table(
        {
            "id": [f"ch_{number:024d}" for number in range(start, start + rows)],
            "note": [f"some text {number} " * 10 for number in range(start, start + rows)],
            "_loaded_at": pa.array([LOADED_AT] * rows, pa.timestamp("us", tz="UTC")),
        }
    )


def test_checkpoint_runs_above_small_limit(tmp_path: Path) -> None:
    connection = open_encrypted_database(tmp_path / "w.duckdb", b"k" * 32, read_only=False, temp_directory=tmp_path / "spill")
    connection.execute("USE wh")
    connection.execute("SET threads = 1")
    connection.execute("SET wal_autocheckpoint = '1TB'")
    budget = MemoryBudget(connection, start_mb=64)
    writer = WarehouseWriter(connection, "stripe", budget)
    writer.ensure_ledger()
    schema = {"properties": {"id": {"type": "string"}, "note": {"type": "string"}}}
    layout = writer.ensure_table(layout_from_schema("charges", schema, ["id"]))
    for number in range(4):
        writer.write_batch(layout, notes(number * 3000, 3000), f"parquet/stripe/charges/part-{number}.parquet", LOADED_AT)

    # 12,000 rows wait in the log; compressing them needs more than 3 MB, and a checkpoint
    # that runs out of memory would leave the database invalid.
    connection.execute("SET memory_limit = '3MB'")
    budget.limit_mb = 3
    writer.checkpoint()

    assert connection.execute("SELECT current_setting('memory_limit')").fetchone() == ("2.8 MiB",)
    connection.execute("SET memory_limit = '64MB'")
    assert connection.execute("SELECT count(*), count(DISTINCT id) FROM stripe.charges").fetchone() == (12_000, 12_000)
    assert not (tmp_path / "w.duckdb.wal").exists() or (tmp_path / "w.duckdb.wal").stat().st_size == 0
    connection.close()


def test_large_log_checkpointed_after_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(duckdb_tables, "WAL_CHECKPOINT_BYTES", 100_000)
    wal = tmp_path / "w.duckdb.wal"
    connection = open_encrypted_database(tmp_path / "w.duckdb", b"k" * 32, read_only=False, temp_directory=tmp_path / "spill")
    connection.execute("USE wh")
    connection.execute("SET wal_autocheckpoint = '1TB'")
    writer = WarehouseWriter(connection, "stripe", MemoryBudget(connection), wal)
    writer.ensure_ledger()
    schema = {"properties": {"id": {"type": "string"}, "note": {"type": "string"}}}
    layout = writer.ensure_table(layout_from_schema("charges", schema, ["id"]))

    writer.write_batch(layout, notes(0, 10), "parquet/stripe/charges/part-1.parquet", LOADED_AT)
    small_log = wal.stat().st_size
    writer.checkpoint_large_log()
    kept_log = wal.stat().st_size
    writer.write_batch(layout, notes(10, 3000), "parquet/stripe/charges/part-2.parquet", LOADED_AT)
    writer.checkpoint_large_log()

    assert 0 < small_log < 100_000
    assert kept_log == small_log
    assert not wal.exists() or wal.stat().st_size == 0
    assert connection.execute("SELECT count(*) FROM stripe.charges").fetchone() == (3010,)
    connection.close()


class LowerLimitRefusedOnce(MemoryBudget):
    """Fail once, as DuckDB does when it cannot free enough pages, when the limit is set back after a commit."""

    armed = False
    refusals_left = 1

    def _apply(self) -> None:
        if self.armed and self.refusals_left:
            self.refusals_left -= 1
            raise duckdb.OutOfMemoryException("could not free up enough memory for the new limit")
        super()._apply()


def test_refused_limit_after_commit_keeps_batch_once(tmp_path: Path) -> None:
    connection = open_encrypted_database(tmp_path / "w.duckdb", b"k" * 32, read_only=False, temp_directory=tmp_path / "spill")
    connection.execute("USE wh")
    budget = LowerLimitRefusedOnce(connection)
    # Without a row group size every commit runs under the raised limit, which is set back afterwards.
    writer = WarehouseWriter(connection, "stripe", budget)
    writer.ensure_ledger()
    layout = writer.ensure_table(layout_from_schema("charges", {"properties": {"id": {"type": "string"}, "note": {"type": "string"}}}, ["id"]))
    budget.armed = True

    writer.write_batch(layout, notes(0, 2), "parquet/stripe/charges/part-1.parquet", LOADED_AT)

    assert budget.refusals_left == 0
    assert connection.execute("SELECT id FROM stripe.charges ORDER BY id").fetchall() == [(f"ch_{n:024d}",) for n in range(2)]
    assert connection.execute("SELECT count(*) FROM _spendlake.loads").fetchone() == (1,)
    connection.close()
