"""A Bloom filter of a table's stored keys, so that an upsert can skip a delete that would match nothing.

An upsert deletes the stored rows that carry the batch's keys, then inserts
the batch. The delete scans every stored key, so during a first load each
batch costs more than the one before. In a load of one million records, the
deletes took a quarter of the committer's time although none of them matched
a row. The filter contains the hash of every stored key. When none of a
batch's keys is in it, no stored row can carry one of them, and the delete is
left out. A false positive (the filter says "maybe") only means the delete runs as
before, so the filter can never make a key appear twice.

The filter is built from the table the first time a session writes to it, and
then gains each committed batch's keys. Nothing else writes the table while a
load holds the tenant lock. The filter is sized for twice the stored keys, so
it takes 3.6 to 7.2 MB per million of them, and a table with more than
`MAX_KEYS` rows gets no filter.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
from rbloom import Bloom

from targets.warehouse.duckdb_store import quote_identifier

#: Stored rows above which a table gets no filter and every batch deletes as before.
MAX_KEYS = 8_000_000
#: Chance that the filter reports one absent key as present. A batch of 24,576 new keys then skips its delete 97.6% of the time.
FALSE_POSITIVE_RATE = 1e-6
#: Keys the first filter of a table is sized for (about 240 kB). When it fills, it is rebuilt twice as large.
MIN_CAPACITY = 65_536
_SCAN_ROWS = 100_000


class KeyFilter:
    """The hashes of every key stored in one table."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, table: str, key_columns: Sequence[tuple[str, str]]) -> None:
        """`key_columns` lists each key column's name and stored DuckDB type, in key order."""
        self._connection = connection
        self._table = table
        # Both sides are cast to the stored types, so that one value always gets one hash.
        self._hash_sql = "hash(" + ", ".join(f"CAST({quote_identifier(name)} AS {type_})" for name, type_ in key_columns) + ")"
        self._capacity = 0
        self._items = 0
        self._bloom = Bloom(1, FALSE_POSITIVE_RATE)

    @classmethod
    def load(cls, connection: duckdb.DuckDBPyConnection, table: str, key_columns: Sequence[tuple[str, str]]) -> KeyFilter | None:
        """Return the filter of `table` filled with its stored keys, or None when the table is too large to keep one."""
        key_filter = cls(connection, table, key_columns)
        return key_filter if key_filter._rebuild(MIN_CAPACITY) else None

    def batch_hashes(self, view: str) -> list[int]:
        """Return the key hashes of the batch registered as `view`."""
        table = self._connection.execute(f"SELECT {self._hash_sql} FROM {view}").to_arrow_table()  # noqa: S608
        return table.column(0).to_pylist()

    def may_contain_any(self, hashes: list[int]) -> bool:
        """False only when no stored key has one of these hashes."""
        return any(map(self._bloom.__contains__, hashes))

    def add(self, hashes: list[int]) -> bool:
        """Add the hashes of a committed batch; return False when the table has outgrown the filter, which the caller then drops."""
        self._bloom.update(hashes)
        self._items += len(hashes)
        if self._items <= self._capacity:
            return True
        return self._rebuild(self._capacity * 2)

    def _rebuild(self, capacity: int) -> bool:
        stored = self._connection.execute(f"SELECT count(*) FROM {self._table}").fetchone()  # noqa: S608
        count = int(stored[0]) if stored else 0
        if count > MAX_KEYS:
            return False

        self._capacity = max(capacity, 2 * count)
        self._bloom = Bloom(self._capacity, FALSE_POSITIVE_RATE)
        reader = self._connection.execute(f"SELECT {self._hash_sql} AS key_hash FROM {self._table}").to_arrow_reader(_SCAN_ROWS)  # noqa: S608
        for batch in reader:
            self._bloom.update(batch.column(0).to_pylist())
        self._items = count
        return True
