"""Tables of the DuckDB warehouse: create and evolve them, upsert batches, keep the load ledger.

One schema per source (`stripe.charges`), one table per stream. Each batch is
one transaction holding the upsert and its ledger row, so the ledger lists
exactly the committed batches. A lock serialises writers, because the SDK drains
sinks from several threads and a DuckDB connection is not safe to share
between concurrent threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from targets.warehouse import type_changes
from targets.warehouse.arrow_schema import DELETED_AT, LOADED_AT, TIMESTAMP, Column, StreamLayout
from targets.warehouse.duckdb_memory import MemoryBudget
from targets.warehouse.duckdb_store import ALIAS, quote_identifier
from targets.warehouse.errors import WarehouseSchemaError, WarehouseWriteError
from targets.warehouse.key_filter import KeyFilter
from targets.warehouse.table_keys import create_key_table, record_keys, stored_keys

LEDGER_SCHEMA = "_spendlake"
LEDGER_TABLE = "loads"
#: One row per stored column with its PII class and the mapper's action, read by the GDPR commands.
CATALOG_TABLE = "columns"
#: Size of the write-ahead log past which the writer checkpoints after a batch.
WAL_CHECKPOINT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class _StoredColumn:
    name: str
    data_type: str
    nullable: bool


class WarehouseWriter:
    """Writes one source's streams into the attached warehouse `wh`."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        source: str,
        memory: MemoryBudget | None = None,
        wal_path: Path | None = None,
        row_group_size: int | None = None,
    ) -> None:
        """`wal_path`, when given, lets `checkpoint_large_log` check the write-ahead log's size.

        `row_group_size` is the connection's `ROW_GROUP_SIZE`, if one was set when attaching.
        """
        self._connection = connection
        self._source = source
        self._memory = memory
        self._wal_path = wal_path
        self._row_group_size = row_group_size
        self._lock = threading.Lock()
        #: Stored-key filter per stream; None where the table is too large for one.
        self._key_filters: dict[str, KeyFilter | None] = {}
        #: Batches whose delete was left out because none of their keys was stored.
        self.deletes_skipped = 0

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
            create_key_table(self._connection, ALIAS)
            identity = f"{ALIAS}.{LEDGER_SCHEMA}.warehouse"
            self._connection.execute(f"CREATE TABLE IF NOT EXISTS {identity} (id VARCHAR, created_at TIMESTAMPTZ)")
            if self._connection.execute(f"SELECT count(*) FROM {identity}").fetchone()[0] == 0:  # noqa: S608
                self._connection.execute(f"INSERT INTO {identity} VALUES (?, now())", [uuid.uuid4().hex])  # noqa: S608

    def warehouse_id(self) -> str:
        """Return the id this warehouse was given when it was created; a replaced warehouse has a new one."""
        with self._lock:
            row = self._connection.execute(f"SELECT id FROM {ALIAS}.{LEDGER_SCHEMA}.warehouse LIMIT 1").fetchone()  # noqa: S608
        return str(row[0])

    def ensure_table(self, layout: StreamLayout) -> StreamLayout:
        """Create the stream's table, or evolve it to the layout; return the layout as stored.

        New columns are added and widening type changes applied, all in one
        transaction. A narrower declared type keeps the stored column, so the
        returned layout may differ from `layout`. Raises `WarehouseSchemaError` for
        an incompatible type change or a changed primary key; nothing changes then.
        """
        with self._lock:
            self._connection.execute("BEGIN TRANSACTION")
            try:
                stored_layout = self._ensure_table_in_transaction(layout)
                self._record_columns(layout)
                self._connection.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            return stored_layout

    def _ensure_table_in_transaction(self, layout: StreamLayout) -> StreamLayout:
        self._connection.execute(f"CREATE SCHEMA IF NOT EXISTS {ALIAS}.{quote_identifier(self._source)}")
        stored = self._stored_columns(layout.stream)
        if not stored:
            self._connection.execute(self._create_table_sql(layout))
            if layout.key_properties:
                record_keys(self._connection, ALIAS, self._source, layout.stream, list(layout.key_properties))
            return layout

        self._check_primary_key(layout)
        return self._evolve_columns(layout, stored)

    def committed_files(self) -> set[str]:
        """Return the Parquet files the ledger lists for this source (relative to the lake root)."""
        with self._lock:
            rows = self._connection.execute(
                f"SELECT parquet_file FROM {self._ledger_name()} WHERE source = ?",  # noqa: S608
                [self._source],
            ).fetchall()
        return {str(row[0]) for row in rows}

    def last_loaded_at(self) -> datetime.datetime | None:
        """Return the load time of this source's latest committed batch, or None before the first."""
        with self._lock:
            row = self._connection.execute(
                f"SELECT max(loaded_at) FROM {self._ledger_name()} WHERE source = ?",  # noqa: S608
                [self._source],
            ).fetchone()
        return row[0] if row else None

    def _record_columns(self, layout: StreamLayout) -> None:
        """Store each column's PII class and action; a later SCHEMA's marks replace earlier ones."""
        rows = [
            [self._source, layout.stream, column.name, column.pii_class, column.pii_action]
            for column in layout.columns
        ]
        # Delete and insert rather than replace (an update), for the reason given in `_upsert_statements`.
        # Columns the new SCHEMA no longer declares keep their entries: their stored values remain.
        self._connection.execute(
            f"DELETE FROM {self._catalog_name()} WHERE source = ? AND stream = ? AND list_contains(?, column_name)",  # noqa: S608
            [self._source, layout.stream, layout.column_names],
        )
        self._connection.executemany(f"INSERT INTO {self._catalog_name()} VALUES (?, ?, ?, ?, ?)", rows)  # noqa: S608

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
                self._commit_batch(layout, quote_identifier(view), table.num_rows, parquet_file, loaded_at)
            finally:
                self._connection.unregister(view)

    def checkpoint(self) -> None:
        """Merge the write-ahead log into the database file."""
        with self._lock:
            self._checkpoint()

    def _checkpoint(self) -> None:
        with self._memory.for_write_out() if self._memory is not None else contextlib.nullcontext():
            self._connection.execute(f"CHECKPOINT {ALIAS}")

    def checkpoint_large_log(self) -> None:
        """Checkpoint when the write-ahead log has grown past `WAL_CHECKPOINT_BYTES` (DuckDB's own trigger is off).

        Call it after a batch's commit, never inside it: the batch is durable
        then, so a failed checkpoint must not count as a failed batch.
        """
        try:
            size = self._wal_path.stat().st_size if self._wal_path is not None else 0
        except FileNotFoundError:
            return
        if size > WAL_CHECKPOINT_BYTES:
            with self._lock:
                self._checkpoint()

    def _commit_batch(
        self,
        layout: StreamLayout,
        view: str,
        rows: int,
        parquet_file: str,
        loaded_at: datetime.datetime,
    ) -> None:
        """Store the batch and its ledger row in one transaction; retry under a larger memory limit if needed."""
        while True:
            try:
                key_filter = self._key_filter(layout)
                hashes = key_filter.hashes_of(view) if key_filter is not None else None
                replace = hashes is None or key_filter.may_contain_any(hashes)
                statements = self._upsert_statements(layout, view, replace=replace)
                self._run_transaction(layout, statements, rows, parquet_file, loaded_at)
                self.deletes_skipped += not replace
                if hashes is not None and not key_filter.add(hashes):
                    self._key_filters[layout.stream] = None
                return
            except duckdb.Error as error:
                self._rollback()
                if self._memory is not None and self._memory.may_retry(error) and self._memory.grow():
                    continue
                raise self._write_error(layout, rows, error) from None

    @staticmethod
    def _write_error(layout: StreamLayout, rows: int, error: duckdb.Error) -> WarehouseWriteError:
        # DuckDB's constraint and conversion messages quote values, so only the error class is shown.
        msg = (
            f"Stream {layout.stream!r}: DuckDB rejected a batch of {rows} records ({type(error).__name__}). "
            f"The batch was rolled back; earlier batches stay committed."
        )
        if isinstance(error, duckdb.TransactionException):
            msg += " Run the load again: it resumes from the last saved state."
        return WarehouseWriteError(msg)

    def _run_transaction(
        self,
        layout: StreamLayout,
        statements: list[str],
        rows: int,
        parquet_file: str,
        loaded_at: datetime.datetime,
    ) -> None:
        self._connection.execute("BEGIN TRANSACTION")
        for statement in statements:
            self._connection.execute(statement)
        ledger = f"INSERT INTO {self._ledger_name()} VALUES (?, ?, ?, ?, ?)"  # noqa: S608
        self._connection.execute(ledger, [loaded_at, self._source, layout.stream, rows, parquet_file])
        with self._memory.for_write_out() if self._memory is not None and self._commit_writes_rows(rows) else contextlib.nullcontext():
            self._connection.execute("COMMIT")

    def _commit_writes_rows(self, rows: int) -> bool:
        """True when the commit itself writes the batch's rows out, which takes memory.

        A batch of whole row groups went to the database file during its insert,
        so its commit writes little. Raising the limit for every commit made
        DuckDB evict and reload pages each time, which cost 1.4 s of CPU in a
        load of one million records.
        """
        return self._row_group_size is None or rows % self._row_group_size != 0

    def _append_sql(self, layout: StreamLayout, view: str) -> str:
        table = self._table_name(layout.stream)
        column_list = ", ".join(quote_identifier(name) for name in [*layout.column_names, LOADED_AT])
        return f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {view} AS batch"  # noqa: S608

    def _key_filter(self, layout: StreamLayout) -> KeyFilter | None:
        """Return the stream's stored-key filter, building it on the first batch; None for keyless or large tables."""
        if not layout.key_properties:
            return None
        if layout.stream not in self._key_filters:
            stored = self._stored_columns(layout.stream)
            key_columns = [(stored[name.lower()].name, stored[name.lower()].data_type) for name in layout.key_properties]
            self._key_filters[layout.stream] = KeyFilter.load(self._connection, self._table_name(layout.stream), key_columns)
        return self._key_filters[layout.stream]

    def _upsert_statements(self, layout: StreamLayout, view: str, *, replace: bool = True) -> list[str]:
        """SQL that replaces the batch's keys: delete the stored rows, insert the batch (keyless: append).

        No UPDATE is used: DuckDB 1.5.5 can lose updated values when it replays
        its write-ahead log after a crash, while deletes and inserts replay
        correctly. A tombstone takes the stored row's values, so the rows to
        insert are computed into a temporary table before the delete. With
        `replace` false (no batch key is stored) the delete is left out.
        """
        if not layout.key_properties:
            return [self._append_sql(layout, view)]

        table = self._table_name(layout.stream)
        key_match = " AND ".join(
            f"stored.{quote_identifier(name)} = batch.{quote_identifier(name)}" for name in layout.key_properties
        )
        deletes = [f"DELETE FROM {table} AS stored USING {view} AS batch WHERE {key_match}"] if replace else []  # noqa: S608
        if not layout.has_tombstones:
            return [*deletes, self._append_sql(layout, view)]

        merged = quote_identifier(f"{view.strip(chr(34))}_merged")
        return [
            f"CREATE TEMP TABLE {merged} AS {self._merged_rows_sql(layout, table, view)}",
            *deletes,
            self._append_sql(layout, merged),
            f"DROP TABLE {merged}",
        ]

    def _merged_rows_sql(self, layout: StreamLayout, table: str, view: str) -> str:
        """Rows to store for the batch: live records as sent; a tombstone over the stored row's values.

        Personal columns (those mapper-pii pseudonymised or marked personal) are not
        carried over: a tombstone keeps the marketing history, not the person's data.
        """
        keys = {name.lower() for name in layout.key_properties}
        personal = set(layout.pii_columns)
        key_match = " AND ".join(f"stored.{quote_identifier(name)} = batch.{quote_identifier(name)}" for name in layout.key_properties)
        deleted = f"batch.{quote_identifier(DELETED_AT)}"
        selected = []
        for name in [*layout.column_names, LOADED_AT]:
            column = quote_identifier(name)
            if name.lower() in keys or name in (DELETED_AT, LOADED_AT) or name in personal:
                selected.append(f"batch.{column} AS {column}")
            else:
                selected.append(f"CASE WHEN {deleted} IS NULL THEN batch.{column} ELSE stored.{column} END AS {column}")
        return f"SELECT {', '.join(selected)} FROM {view} AS batch LEFT JOIN {table} AS stored ON {key_match}"  # noqa: S608

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
        return stored_keys(self._connection, ALIAS).get((self._source, stream), [])

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

    def _evolve_columns(self, layout: StreamLayout, stored: dict[str, _StoredColumn]) -> StreamLayout:
        table = self._table_name(layout.stream)
        stored_columns: list[Column] = []
        for column in layout.columns:
            existing = stored.get(column.name.lower())
            if existing is not None and existing.name != column.name:
                msg = (
                    f"Stream {layout.stream!r}, column {column.name!r}: {self._source}.{layout.stream} stores this "
                    f"column as {existing.name!r}, and DuckDB compares names without case, while the Parquet lake "
                    f"does not. Keep the stored spelling in the tap or mapper schema, or load the field under a new name."
                )
                raise WarehouseSchemaError(msg)
            if existing is None:
                # NOTE: added columns are nullable even when required, because older rows have no value.
                added = f"{quote_identifier(column.name)} {column.type.duckdb}"
                self._connection.execute(f"ALTER TABLE {table} ADD COLUMN {added}")
                stored_columns.append(dataclasses.replace(column, nullable=True))
                continue

            stored_columns.append(self._evolve_type(layout, table, column, existing))
            if column.nullable and not existing.nullable:
                self._drop_not_null(table, existing.name)

        declared = {column.name.lower() for column in layout.columns} | {LOADED_AT}
        keys = {key.lower() for key in layout.key_properties}
        for key, existing in stored.items():
            if key not in declared and not existing.nullable and key not in keys:
                self._drop_not_null(table, existing.name)
        return dataclasses.replace(layout, columns=tuple(stored_columns))

    def _evolve_type(self, layout: StreamLayout, table: str, column: Column, existing: _StoredColumn) -> Column:
        """Widen the stored column to the declared type, or keep it when it already represents the declared values."""
        stored_type = type_changes.from_duckdb(existing.data_type)
        change = type_changes.compare(stored_type, column.type) if stored_type else type_changes.Change.INCOMPATIBLE
        is_key = column.name.lower() in {key.lower() for key in layout.key_properties}
        if change is type_changes.Change.SAME:
            return column
        if change is type_changes.Change.KEEP and not is_key:
            return dataclasses.replace(column, type=stored_type)
        if change is type_changes.Change.WIDEN and not is_key:
            statement = f"ALTER TABLE {table} ALTER COLUMN {quote_identifier(existing.name)} TYPE {column.type.duckdb}"
            try:
                self._connection.execute(statement)
            except duckdb.Error:
                raise self._type_change_error(layout, column, existing, "DuckDB could not convert the stored values") from None
            return column

        reason = "key columns cannot change type" if is_key else "neither type holds the other's values exactly"
        raise self._type_change_error(layout, column, existing, reason)

    def _type_change_error(self, layout: StreamLayout, column: Column, existing: _StoredColumn, reason: str) -> WarehouseSchemaError:
        msg = (
            f"Stream {layout.stream!r}, column {column.name!r}: the new SCHEMA declares {column.declared} "
            f"({column.type.duckdb}), but {self._source}.{layout.stream} stores {existing.data_type}, and "
            f"{reason}. Nothing was changed. Restore the previous type in the tap or mapper schema, or load the "
            f"field under a new name."
        )
        return WarehouseSchemaError(msg)

    def _drop_not_null(self, table: str, column: str) -> None:
        self._connection.execute(f"ALTER TABLE {table} ALTER COLUMN {quote_identifier(column)} DROP NOT NULL")

    def _create_table_sql(self, layout: StreamLayout) -> str:
        definitions = [self._column_definition(column) for column in layout.columns]
        definitions.append(f"{quote_identifier(LOADED_AT)} {TIMESTAMP.duckdb} NOT NULL")
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
