"""Read-only SQL on a tenant's encrypted warehouse, printed as a table, CSV or JSON."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import typing as t
from dataclasses import dataclass
from pathlib import Path

import duckdb

from privacy.keys import KeyringError
from spendlake.paths import duckdb_path


class QueryError(RuntimeError):
    """Raised when a query cannot run. The message gives the reason and the next step."""


@dataclass(frozen=True)
class QueryResult:
    """Column names and rows of one query."""

    columns: list[str]
    rows: list[tuple[t.Any, ...]]


def run_query(home: Path, tenant: str, sql: str) -> QueryResult:
    """Open the tenant's warehouse read-only and run one SQL statement."""
    from targets.warehouse.duckdb_store import connect_warehouse
    from targets.warehouse.errors import WarehouseError

    if not duckdb_path(home, tenant).exists():
        msg = f"Tenant {tenant!r} has no warehouse under {home}; run the pipeline (for example `make demo`) first."
        raise QueryError(msg)

    try:
        connection = connect_warehouse(home, tenant, read_only=True)
    except (KeyringError, WarehouseError) as error:
        raise QueryError(str(error)) from None

    try:
        # The data is decrypted in this process: forbid writing it to files in clear.
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
        cursor = connection.execute(sql)
        columns = [column[0] for column in cursor.description or []]
        rows = cursor.fetchall()
    except duckdb.Error as error:
        raise QueryError(f"The query failed: {error}") from None
    finally:
        connection.close()
    return QueryResult(columns=columns, rows=rows)


def write_result(result: QueryResult, output_format: str, out: t.TextIO) -> None:
    """Print a result in the chosen format."""
    if output_format == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    elif output_format == "json":
        records = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
        out.write(json.dumps(records, default=_json_default, indent=2) + "\n")
    else:
        _write_table(result, out)


def _json_default(value: t.Any) -> t.Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _write_table(result: QueryResult, out: t.TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    for column in result.columns:
        table.add_column(column)
    for row in result.rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    Console(file=out, soft_wrap=True).print(table)
