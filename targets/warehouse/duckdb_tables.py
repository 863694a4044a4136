"""Tables of the DuckDB warehouse: create and evolve them, upsert batches, keep the load ledger.

One schema per source (`stripe.charges`), one table per stream. Each batch is
one transaction holding the upsert and its ledger row, so the ledger lists
exactly the committed batches. A lock serialises writers, because the SDK drains
sinks from several threads and a DuckDB connection is not safe to share
between concurrent threads.
"""

from __future__ import annotations

import datetime
import threading
import uuid
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from targets.warehouse.arrow_schema import LOADED_AT, TIMESTAMP, Column, StreamLayout
from targets.warehouse.duckdb_store import ALIAS, quote_identifier
from targets.warehouse.errors import WarehouseSchemaError, WarehouseWriteError

LEDGER_SCHEMA = "_spendlake"
LEDGER_TABLE = "loads"
#: One row per stored column with its PII class and the mapper's action, read by the GDPR commands.
CATALOG_TABLE = "columns"


@dataclass(frozen=True)
class _StoredColumn:
    name: str
    data_type: str
    nullable: bool


class WarehouseWriter:
    """Writes one source's streams into the attached warehouse `wh`."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, source: str) -> None:
        self._connection = connection
        self._source = source
        self._lock = threading.Lock()

    def ensure_ledger(self) -> None:
        """Create `_spendlake.loads`, the column catalog and the warehouse's identity row if they do not exist."""
        with self._lock:
            self._connection.execute(f"CREATE SCHEMA IF NOT EXISTS {ALIAS}.{LEDGER_SCHEMA}")
            self._connection.execute(
                f"CREATE TABLE IF NOT EXISTS {self._ledger_name()} ("
                "loaded_at TIMESTAMPTZ, source VARCHAR, stream VARCHAR, rows BIGINT, parquet_file VARCHAR)"
            )
            self._connection.execute(
                f"CREATE TABLE IF NOT EXISTS {self._catalog_name()} (source VARCHAR, stream VARCHAR, "
                "column_name VARCHAR, pii_class VARCHAR, pii_action VARCHAR, PRIMARY KEY (source, stream, column_name))"
            )
            identity = f"{ALIAS}.{LEDGER_SCHEMA}.warehouse"
            self._connection.execute(f"CREATE TABLE IF NOT EXISTS {identity} (id VARCHAR, created_at TIMESTAMPTZ)")
            if self._connection.execute(f"SELECT count(*) FROM {identity}").fetchone()[0] == 0:  # noqa: S608
                self._connection.execute(f"INSERT INTO {identity} VALUES (?, now())", [uuid.uuid4().hex])  # noqa: S608

    def warehouse_id(self) -> str:
        """Return the id this warehouse was given when it was created; a replaced warehouse has a new one."""
        with self._lock:
            row = self._connection.execute(f"SELECT id FROM {ALIAS}.{LEDGER_SCHEMA}.warehouse LIMIT 1").fetchone()  # noqa: S608
        return str(row[0])

    def ensure_table(self, layout: StreamLayout) -> None:
        """Create the stream's table, or add the columns a later SCHEMA message declares.

        Raises `WarehouseSchemaError` when a column changes type or the primary key changes.
        """
        with self._lock:
            self._connection.execute(f"CREATE SCHEMA IF NOT EXISTS {ALIAS}.{quote_identifier(self._source)}")
            stored = self._stored_columns(layout.stream)
            if stored:
                self._check_primary_key(layout)
                self._evolve_columns(layout, stored)
            else:
                self._connection.execute(self._create_table_sql(layout))
            self._record_columns(layout)

    def _record_columns(self, layout: StreamLayout) -> None:
        """Store each column's PII class and action; a later SCHEMA's marks replace earlier ones."""
        rows = [
            [self._source, layout.stream, column.name, column.pii_class, column.pii_action]
            for column in layout.columns
        ]
        self._connection.executemany(f"INSERT OR REPLACE INTO {self._catalog_name()} VALUES (?, ?, ?, ?, ?)", rows)

    def write_batch(
        self,
        layout: StreamLayout,
        table: pa.Table,
        parquet_file: str,
        loaded_at: datetime.datetime,
    ) -> None:
        """Upsert (or append, without a key) `table` and record it in the ledger, in one transaction."""
        view = f"spendlake_batch_{uuid.uuid4().hex}"
        with self._lock:
            self._connection.register(view, table)
            try:
                self._commit_batch(layout, view, table.num_rows, parquet_file, loaded_at)
            finally:
                self._connection.unregister(view)

    def checkpoint(self) -> None:
        """Merge the write-ahead log into the database file."""
        with self._lock:
            self._connection.execute(f"CHECKPOINT {ALIAS}")

    def _commit_batch(
        self,
        layout: StreamLayout,
        view: str,
        rows: int,
        parquet_file: str,
        loaded_at: datetime.datetime,
    ) -> None:
        columns = [*layout.column_names, LOADED_AT]
        column_list = ", ".join(quote_identifier(name) for name in columns)
        verb = "INSERT OR REPLACE INTO" if layout.key_properties else "INSERT INTO"
        table = self._table_name(layout.stream)
        upsert = f"{verb} {table} ({column_list}) SELECT {column_list} FROM {quote_identifier(view)}"
        ledger = f"INSERT INTO {self._ledger_name()} VALUES (?, ?, ?, ?, ?)"

        try:
            self._connection.execute("BEGIN TRANSACTION")
            self._connection.execute(upsert)
            self._connection.execute(ledger, [loaded_at, self._source, layout.stream, rows, parquet_file])
            self._connection.execute("COMMIT")
        except duckdb.Error as error:
            self._rollback()
            # DuckDB's constraint and conversion messages quote values, so only the error class is shown.
            msg = (
                f"Stream {layout.stream!r}: DuckDB rejected a batch of {rows} records ({type(error).__name__}). "
                f"The batch was rolled back; earlier batches stay committed."
            )
            raise WarehouseWriteError(msg) from None

    def _rollback(self) -> None:
        try:
            self._connection.execute("ROLLBACK")
        except duckdb.Error:
            pass  # No transaction was open (BEGIN itself failed).

    def _stored_columns(self, stream: str) -> dict[str, _StoredColumn]:
        rows = self._connection.execute(
            "SELECT column_name, data_type, is_nullable FROM duckdb_columns() "
            "WHERE database_name = ? AND schema_name = ? AND table_name = ?",
            [ALIAS, self._source, stream],
        ).fetchall()
        return {name.lower(): _StoredColumn(name, data_type, nullable) for name, data_type, nullable in rows}

    def _stored_primary_key(self, stream: str) -> list[str]:
        row = self._connection.execute(
            "SELECT constraint_column_names FROM duckdb_constraints() "
            "WHERE database_name = ? AND schema_name = ? AND table_name = ? AND constraint_type = 'PRIMARY KEY'",
            [ALIAS, self._source, stream],
        ).fetchone()
        return list(row[0]) if row else []

    def _check_primary_key(self, layout: StreamLayout) -> None:
        stored = [name.lower() for name in self._stored_primary_key(layout.stream)]
        declared = [name.lower() for name in layout.key_properties]
        if stored != declared:
            msg = (
                f"Stream {layout.stream!r}: the key properties changed from {stored} to {declared}, but the "
                f"primary key of {self._source}.{layout.stream} cannot change. Restore the previous key "
                f"properties, or load the stream under a new name."
            )
            raise WarehouseSchemaError(msg)

    def _evolve_columns(self, layout: StreamLayout, stored: dict[str, _StoredColumn]) -> None:
        table = self._table_name(layout.stream)
        for column in layout.columns:
            existing = stored.get(column.name.lower())
            if existing is None:
                # NOTE: added columns are nullable even when required, because older rows have no value.
                added = f"{quote_identifier(column.name)} {column.type.duckdb}"
                self._connection.execute(f"ALTER TABLE {table} ADD COLUMN {added}")
                continue

            if existing.data_type != column.type.duckdb:
                msg = (
                    f"Stream {layout.stream!r}, field {column.name!r}: the new SCHEMA declares "
                    f"{column.declared} ({column.type.duckdb}), but the stored column is {existing.data_type}. "
                    f"DuckDB cannot change the type in place: restore the previous type, or load the field "
                    f"under a new name."
                )
                raise WarehouseSchemaError(msg)

            if column.nullable and not existing.nullable:
                self._drop_not_null(table, existing.name)

        declared = {column.name.lower() for column in layout.columns} | {LOADED_AT}
        for key, existing in stored.items():
            if key not in declared and not existing.nullable and key not in {k.lower() for k in layout.key_properties}:
                self._drop_not_null(table, existing.name)

    def _drop_not_null(self, table: str, column: str) -> None:
        self._connection.execute(f"ALTER TABLE {table} ALTER COLUMN {quote_identifier(column)} DROP NOT NULL")

    def _create_table_sql(self, layout: StreamLayout) -> str:
        definitions = [self._column_definition(column) for column in layout.columns]
        definitions.append(f"{quote_identifier(LOADED_AT)} {TIMESTAMP.duckdb} NOT NULL")
        if layout.key_properties:
            keys = ", ".join(quote_identifier(name) for name in layout.key_properties)
            definitions.append(f"PRIMARY KEY ({keys})")
        return f"CREATE TABLE {self._table_name(layout.stream)} ({', '.join(definitions)})"

    @staticmethod
    def _column_definition(column: Column) -> str:
        constraint = "" if column.nullable else " NOT NULL"
        return f"{quote_identifier(column.name)} {column.type.duckdb}{constraint}"

    def _table_name(self, stream: str) -> str:
        return f"{ALIAS}.{quote_identifier(self._source)}.{quote_identifier(stream)}"

    @staticmethod
    def _catalog_name() -> str:
        return f"{ALIAS}.{LEDGER_SCHEMA}.{CATALOG_TABLE}"

    @staticmethod
    def _ledger_name() -> str:
        return f"{ALIAS}.{LEDGER_SCHEMA}.{LEDGER_TABLE}"
