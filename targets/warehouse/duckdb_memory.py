"""DuckDB's memory limit for a load: sized to the stored rows, doubled when a batch needs more.

DuckDB keeps the pages it reads and writes cached up to its memory limit,
whose default is most of the machine's memory, so a load of a million rows
would hold far more than it needs. The limit starts at a base plus an
allowance per stored row of tables that still have a primary-key index
(tables written by earlier versions of the target), because DuckDB keeps
such indexes in memory. A statement that still runs out of memory is rolled
back and runs again under twice the limit. Checkpoints, and commits that
write rows out, run under a raised limit instead (see `MemoryBudget.for_write_out`).

The buffer pool fills up to the limit with pages the load has written, so the
limit also bounds how much of the target's memory DuckDB takes. In a load of
one million records, 64 MB gave a peak RSS about 30 MB higher than 32 MB did.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import duckdb

logger = logging.getLogger(__name__)

START_MB = 32
MAX_MB = 16 * 1024
#: Limit while DuckDB commits or checkpoints. In DuckDB 1.5.5 a checkpoint that runs out of memory
#: invalidates the database, and a commit that does can leave a table's in-memory state inconsistent,
#: so neither runs under the load's small limit.
WRITE_OUT_MB = 1024
#: Memory allowed per stored row of a table with a primary key (an estimate: the index of
#: a million 27-character keys measured about 17 MB in DuckDB 1.5.5).
BYTES_PER_KEYED_ROW = 32


class MemoryBudget:
    """The memory limit of one DuckDB connection."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, start_mb: int = START_MB, max_mb: int = MAX_MB) -> None:
        self._connection = connection
        self._max_mb = max_mb
        keyed_rows = _keyed_rows(connection)
        self.limit_mb = min(start_mb + keyed_rows * BYTES_PER_KEYED_ROW // 2**20, max_mb)
        self._apply()

    def may_retry(self, error: duckdb.Error) -> bool:
        """True when a statement ran out of memory; its transaction rolled back cleanly, so it can run again."""
        return is_out_of_memory(error)

    def grow(self) -> bool:
        """Double the limit; return False when it is already at the maximum."""
        if self.limit_mb >= self._max_mb:
            return False
        self.limit_mb = min(max(self.limit_mb * 2, START_MB), self._max_mb)
        self._apply()
        logger.info("DuckDB needed more memory for a batch; its limit is now %d MB.", self.limit_mb)
        return True

    @contextlib.contextmanager
    def for_write_out(self) -> Iterator[None]:
        """Raise the limit to at least `WRITE_OUT_MB` while a commit or checkpoint runs, then restore it."""
        self._connection.execute(f"SET memory_limit = '{max(self.limit_mb, WRITE_OUT_MB)}MB'")
        try:
            yield
        finally:
            self._restore()

    def for_shutdown(self) -> None:
        """Raise the limit for good, because DuckDB checkpoints when the connection closes."""
        self._connection.execute(f"SET memory_limit = '{max(self.limit_mb, WRITE_OUT_MB)}MB'")

    def _restore(self) -> None:
        """Set the load's limit again after a write-out, or keep the raised one when DuckDB cannot free enough memory.

        The commit or checkpoint has finished by then. Raising here would make
        a committed batch look rolled back, and running it again would store
        its rows twice.
        """
        try:
            self._apply()
        except duckdb.OutOfMemoryException:
            logger.info("DuckDB could not lower its memory limit to %d MB, so the raised limit stays until the next change.", self.limit_mb)

    def _apply(self) -> None:
        self._connection.execute(f"SET memory_limit = '{self.limit_mb}MB'")


def is_out_of_memory(error: duckdb.Error) -> bool:
    """True when a statement ran out of memory; its transaction rolls back cleanly, so it can run again."""
    return isinstance(error, duckdb.OutOfMemoryException)


def _keyed_rows(connection: duckdb.DuckDBPyConnection) -> int:
    """Return the estimated number of rows in data tables with a primary key, in the current database.

    The catalog tables under `_spendlake` have primary keys too, but batch transactions do not write them.
    """
    row = connection.execute(
        "SELECT coalesce(sum(estimated_size), 0) FROM duckdb_tables() "
        "WHERE database_name = current_database() AND has_primary_key AND schema_name <> '_spendlake'"
    ).fetchone()
    return int(row[0]) if row else 0
