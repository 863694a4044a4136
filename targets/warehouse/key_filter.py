"""The hashes of a table's stored keys, so that an upsert can skip a delete that would match nothing.

An upsert deletes the stored rows that carry the batch's keys, then inserts
the batch. The delete scans every stored key, so during a first load each
batch costs more than the one before. In a load of one million records, the
deletes took a quarter of the committer's time although none of them matched
a row. This filter keeps the 64-bit DuckDB hash of every stored key in
memory. When none of a batch's key hashes is in it, no stored row can carry
one of the batch's keys, and the delete is left out. Two keys with the same hash only mean the delete runs as before, so
the filter can never make a key appear twice.

The filter is filled from the table the first time a session writes to it.
A batch's hashes are computed once, by DuckDB, and tested against the stored
ones in Arrow, which probes them with a hash set of the batch's keys (24,576
by default) and releases the GIL. The check used to be a DuckDB join, which built a
hash table of every stored key for each batch and took about three times as
long in a load of one million records. The batch's hashes are added only
after its transaction commits, so a batch that rolls back leaves none behind. Nothing else writes the table while a load holds the tenant
lock. The hashes take 8 bytes per stored key, so a table with more than
`MAX_KEYS` rows gets no filter.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from targets.warehouse.duckdb_store import quote_identifier

#: Stored rows above which a table gets no filter and every batch deletes as before (32 MB of hashes).
MAX_KEYS = 4_000_000
#: Number of batch hash arrays kept before they are joined into one.
MAX_PARTS = 64


class KeyFilter:
    """The hash of every key stored in one table."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, key_columns: Sequence[tuple[str, str]]) -> None:
        """`key_columns` lists each key column's name and stored DuckDB type, in key order."""
        self._connection = connection
        # Both sides are cast to the stored types, so that one value always gets one hash.
        self._hash_sql = "hash(" + ", ".join(f"CAST({quote_identifier(name)} AS {type_})" for name, type_ in key_columns) + ")"
        self._stored: list[pa.Array] = []
        self._rows = 0

    @classmethod
    def load(cls, connection: duckdb.DuckDBPyConnection, table: str, key_columns: Sequence[tuple[str, str]]) -> KeyFilter | None:
        """Return the filter of `table` filled with its stored keys, or None when the table has too many rows for one."""
        key_filter = cls(connection, key_columns)
        stored = connection.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
        key_filter._rows = int(stored[0]) if stored else 0
        if key_filter._rows > MAX_KEYS:
            return None
        if key_filter._rows:
            key_filter._stored.append(key_filter.hashes_of(table))
        return key_filter

    def hashes_of(self, relation: str) -> pa.Array:
        """Return the key hash of every row of `relation` (a table, or a batch registered as a view)."""
        result = self._connection.execute(f"SELECT {self._hash_sql} FROM {relation}").to_arrow_table()  # noqa: S608
        return result.column(0).combine_chunks()

    def may_contain_any(self, hashes: pa.Array) -> bool:
        """Return False only when no stored key has one of the batch's key `hashes`."""
        if not self._stored:
            return False
        found = pc.is_in(pa.chunked_array(self._stored, hashes.type), value_set=hashes)
        return pc.any(found).as_py() is True

    def add(self, hashes: pa.Array) -> bool:
        """Add a committed batch's key hashes. Return False, after dropping all hashes, once the table has outgrown the filter."""
        self._rows += len(hashes)
        if self._rows > MAX_KEYS:
            self._stored.clear()
            return False
        self._stored.append(hashes)
        if len(self._stored) > MAX_PARTS:
            # Many small batches would otherwise make each check step through many small arrays.
            self._stored = [pa.concat_arrays(self._stored)]
        return True
