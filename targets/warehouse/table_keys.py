"""The key columns of each warehouse table, kept in `_spendlake.table_keys` rather than as a DuckDB index.

DuckDB keeps a primary-key index in memory, and deleting keys from the index
of a stored table costs about a second per 25,000 rows (DuckDB 1.5.5, encrypted
file), which made every re-read of a lookback window slow. The target checks
key uniqueness itself (within a batch, and by replacing stored rows with the
same key), so new tables have no PRIMARY KEY constraint. Tables created by
earlier versions keep theirs, and `stored_keys` reads both.
"""

from __future__ import annotations

import duckdb

LEDGER_SCHEMA = "_spendlake"
TABLE = "table_keys"
QUALIFIED = f"{LEDGER_SCHEMA}.{TABLE}"


def create_key_table(connection: duckdb.DuckDBPyConnection, database: str) -> None:
    """Create the key table if it does not exist."""
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {database}.{QUALIFIED} (source VARCHAR, stream VARCHAR, key_properties VARCHAR[])"
    )


def record_keys(connection: duckdb.DuckDBPyConnection, database: str, source: str, stream: str, keys: list[str]) -> None:
    """Store the key columns of a new table."""
    connection.execute(
        f"INSERT INTO {database}.{QUALIFIED} VALUES (?, ?, ?)",  # noqa: S608
        [source, stream, keys],
    )


def stored_keys(connection: duckdb.DuckDBPyConnection, database: str) -> dict[tuple[str, str], list[str]]:
    """Return the key columns of every keyed table, by (source, stream): recorded keys, then PRIMARY KEY constraints."""
    keys: dict[tuple[str, str], list[str]] = {}
    has_table = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? AND table_name = ?",
        [database, LEDGER_SCHEMA, TABLE],
    ).fetchone()
    if has_table and has_table[0]:
        rows = connection.execute(f"SELECT source, stream, key_properties FROM {database}.{QUALIFIED}").fetchall()  # noqa: S608
        keys.update({(source, stream): list(names) for source, stream, names in rows if names})

    constraints = connection.execute(
        "SELECT schema_name, table_name, constraint_column_names FROM duckdb_constraints() "
        "WHERE database_name = ? AND constraint_type = 'PRIMARY KEY'",
        [database],
    ).fetchall()
    for source, stream, names in constraints:
        keys.setdefault((source, stream), [str(name) for name in names])
    return keys
