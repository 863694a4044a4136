"""The column catalog, tables and Parquet files of a tenant's warehouse, as the GDPR operations read them.

target-warehouse keeps one row per stored column in `_spendlake.columns`: its
`x-pii` class and the action mapper-pii applied. Every stream has a table
`<source>.<stream>` in DuckDB and encrypted Parquet files under
`parquet/<source>/<stream>/`, which keep every batch ever loaded (older
versions of upserted rows included).
"""

from __future__ import annotations

import typing as t
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from privacy.keys import KeyringError
from spendlake.paths import duckdb_path, parquet_dir, tenant_dir

CATALOG_TABLE = "_spendlake.columns"
LOADED_AT = "_loaded_at"
DELETED_AT = "_sdc_deleted_at"


class WarehouseAccessError(RuntimeError):
    """Raised when the tenant's warehouse cannot be opened or read; the message names the fix."""


@dataclass(frozen=True)
class StoredColumn:
    """One stored column of a stream with its PII class and the action mapper-pii applied."""

    source: str
    stream: str
    name: str
    pii_class: str | None
    pii_action: str | None

    @property
    def table(self) -> str:
        """Return `source.stream`."""
        return f"{self.source}.{self.stream}"


@dataclass(frozen=True)
class FileChange:
    """The outcome of an erasure or retention run for one Parquet file (`path` relative to the tenant folder)."""

    path: str
    rows_before: int
    rows_after: int
    removed: bool


@contextmanager
def open_warehouse(home: Path, tenant: str, *, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the tenant's existing warehouse as `wh`; never create one."""
    from targets.warehouse.duckdb_store import connect_warehouse
    from targets.warehouse.errors import WarehouseError

    require_warehouse(home, tenant)
    try:
        connection = connect_warehouse(home, tenant, read_only=read_only)
    except (KeyringError, WarehouseError) as error:
        raise WarehouseAccessError(str(error)) from None
    try:
        yield connection
    finally:
        connection.close()


def require_warehouse(home: Path, tenant: str) -> None:
    """Raise `WarehouseAccessError` unless the tenant has a DuckDB database, so no keyring is created by mistake."""
    path = duckdb_path(home, tenant)
    if not path.exists():
        msg = f"Tenant {tenant!r} has no warehouse at {path}; check --tenant and --home, or run a load first."
        raise WarehouseAccessError(msg)


def stored_tables(connection: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """Return `(source, stream)` of every table target-warehouse loaded, sorted.

    Only tables in the column catalog count, so the `_spendlake` schema and the
    tables dbt builds from the streams (staging, marts, seeds) are left out.
    A warehouse from before the catalog lists every table but `_spendlake`'s.
    """
    if not _has_catalog(connection):
        rows = connection.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE database_name = current_database() AND schema_name <> '_spendlake' ORDER BY 1, 2"
        ).fetchall()
    else:
        rows = connection.execute(
            "SELECT DISTINCT t.schema_name, t.table_name FROM duckdb_tables() t "
            f"JOIN {CATALOG_TABLE} c ON c.source = t.schema_name AND c.stream = t.table_name "  # noqa: S608 - fixed names only
            "WHERE t.database_name = current_database() ORDER BY 1, 2"
        ).fetchall()
    return [(str(source), str(stream)) for source, stream in rows]


def _has_catalog(connection: duckdb.DuckDBPyConnection) -> bool:
    found = connection.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = '_spendlake' AND table_name = 'columns'"
    ).fetchone()
    return bool(found and found[0])


def read_catalog(connection: duckdb.DuckDBPyConnection) -> list[StoredColumn]:
    """Return the catalog rows of every stored table, in table and column order.

    Raises `WarehouseAccessError` when the warehouse predates the catalog.
    """
    if not _has_catalog(connection):
        msg = (
            f"The warehouse has no column catalog ({CATALOG_TABLE}), so its personal-data columns are unknown; "
            "run a load with the current target-warehouse, which creates it."
        )
        raise WarehouseAccessError(msg)

    rows = connection.execute(
        "SELECT c.source, c.stream, c.column_name, c.pii_class, c.pii_action "
        f"FROM {CATALOG_TABLE} c JOIN duckdb_columns() d "  # noqa: S608 - fixed names only
        "ON d.database_name = current_database() AND d.schema_name = c.source "
        "AND d.table_name = c.stream AND d.column_name = c.column_name "
        "ORDER BY c.source, c.stream, d.column_index"
    ).fetchall()
    return [StoredColumn(*row) for row in rows]


def columns_by_table(catalog: t.Iterable[StoredColumn]) -> dict[tuple[str, str], list[StoredColumn]]:
    """Group catalog rows by `(source, stream)`, keeping their order."""
    grouped: dict[tuple[str, str], list[StoredColumn]] = {}
    for column in catalog:
        grouped.setdefault((column.source, column.stream), []).append(column)
    return grouped


def column_types(connection: duckdb.DuckDBPyConnection, source: str, stream: str) -> dict[str, str]:
    """Return the DuckDB type of each column of `source.stream`."""
    rows = connection.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = ? AND table_name = ? ORDER BY column_index",
        [source, stream],
    ).fetchall()
    return {str(name): str(data_type) for name, data_type in rows}


def parquet_files(home: Path, tenant: str, source: str, stream: str) -> list[Path]:
    """Return the stream's committed Parquet files, sorted (temporary files of a running write are left out)."""
    folder = parquet_dir(home, tenant, source, stream)
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.glob("*.parquet") if path.is_file() and not path.name.startswith("."))


def relative_to_tenant(home: Path, tenant: str, path: Path) -> str:
    """Return `path` relative to the tenant's warehouse folder, for reports and audit events."""
    try:
        return str(path.relative_to(tenant_dir(home, tenant)))
    except ValueError:
        return path.name


def quote_table(source: str, stream: str) -> str:
    """Return the quoted name of a stream's table."""
    from targets.warehouse.duckdb_store import quote_identifier

    return f"{quote_identifier(source)}.{quote_identifier(stream)}"


def rollback(connection: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction; do nothing when none is open (BEGIN or COMMIT itself failed)."""
    try:
        connection.execute("ROLLBACK")
    except duckdb.TransactionException:
        pass
