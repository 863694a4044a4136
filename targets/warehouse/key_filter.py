"""The hashes of a table's stored keys, so that an upsert can skip a delete that would match nothing.

An upsert deletes the stored rows that carry the batch's keys, then inserts
the batch. The delete scans every stored key, so during a first load each
batch costs more than the one before. In a load of one million records, the
deletes took a quarter of the committer's time although none of them matched
a row. This filter keeps the 64-bit DuckDB hash of every stored key in a
temporary table of the load's connection. When none of a batch's key hashes
is in it, no stored row can carry one of the batch's keys, and the delete is
left out. Two keys with the same hash only mean the delete runs as before, so
the filter can never make a key appear twice.

The filter is filled from the table the first time a session writes to it.
Each batch's hashes are added in the batch's own transaction, so a batch that
rolls back leaves no hashes behind. Nothing else writes the table while a load
holds the tenant lock. The temporary table takes about 8 bytes per stored key
of DuckDB's memory (it can spill to DuckDB's encrypted temporary files), so a
table with more than `MAX_KEYS` rows gets no filter.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import duckdb

from targets.warehouse.duckdb_store import quote_identifier

#: Stored rows above which a table gets no filter and every batch deletes as before (32 MB of hashes).
MAX_KEYS = 4_000_000


class KeyFilter:
    """The hash of every key stored in one table."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, table: str, key_columns: Sequence[tuple[str, str]]) -> None:
        """`key_columns` lists each key column's name and stored DuckDB type, in key order."""
        self._connection = connection
        self._table = table
        # Both sides are cast to the stored types, so that one value always gets one hash.
        self._hash_sql = "hash(" + ", ".join(f"CAST({quote_identifier(name)} AS {type_})" for name, type_ in key_columns) + ")"
        self._hashes = f"temp.main.{quote_identifier(f'spendlake_key_hashes_{uuid.uuid4().hex}')}"
        self._rows = 0

    @classmethod
    def load(cls, connection: duckdb.DuckDBPyConnection, table: str, key_columns: Sequence[tuple[str, str]]) -> KeyFilter | None:
        """Return the filter of `table` filled with its stored keys, or None when the table has too many rows for one."""
        key_filter = cls(connection, table, key_columns)
        stored = connection.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
        key_filter._rows = int(stored[0]) if stored else 0
        if key_filter._rows > MAX_KEYS:
            return None
        connection.execute(f"CREATE TEMP TABLE {key_filter._hashes} AS SELECT {key_filter._hash_sql} AS key_hash FROM {table}")  # noqa: S608
        return key_filter

    def may_contain_any(self, view: str) -> bool:
        """Return False only when no stored key has the hash of a key of the batch registered as `view`."""
        row = self._connection.execute(
            f"SELECT EXISTS (SELECT 1 FROM {view} WHERE {self._hash_sql} IN (SELECT key_hash FROM {self._hashes}))"  # noqa: S608
        ).fetchone()
        return bool(row and row[0])

    def add_sql(self, view: str) -> str:
        """Return the statement that adds the batch's key hashes; it runs in the batch's transaction."""
        return f"INSERT INTO {self._hashes} SELECT {self._hash_sql} FROM {view}"  # noqa: S608

    def count_added(self, rows: int) -> bool:
        """Count a committed batch's rows; return False, having dropped the hashes, once the table has outgrown the filter."""
        self._rows += rows
        if self._rows <= MAX_KEYS:
            return True
        self._connection.execute(f"DROP TABLE IF EXISTS {self._hashes}")
        return False
