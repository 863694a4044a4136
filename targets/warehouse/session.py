"""The resources a target run keeps open: tenant keys, the lake, the DuckDB writer and the Parquet crypto."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

import duckdb

from privacy.keys import load_tenant_keys
from spendlake.paths import duckdb_path, tenant_dir
from targets.warehouse.duckdb_memory import MemoryBudget
from targets.warehouse.duckdb_store import open_tenant_warehouse, remove_stale_spill_folders, row_group_rows
from targets.warehouse.duckdb_tables import WarehouseWriter
from targets.warehouse.lake import Lake, LocalLake
from targets.warehouse.lake_location import open_lake
from targets.warehouse.parquet_crypto import ParquetCrypto
from targets.warehouse.parquet_store import stream_folder

logger = logging.getLogger(__name__)

_ONE_MICROSECOND = datetime.timedelta(microseconds=1)


class WarehouseSession:
    """Open stores of one tenant and source for the length of a run."""

    def __init__(
        self,
        home: Path,
        tenant: str,
        source: str,
        *,
        lake_url: str | None = None,
        s3_endpoint_url: str | None = None,
        s3_kms_key_id: str | None = None,
        batch_rows: int | None = None,
    ) -> None:
        self.home = home
        self.tenant = tenant
        self.source = source
        self.tenant_dir = tenant_dir(home, tenant)

        keys = load_tenant_keys(home, tenant)
        self.pseudonym_key_id = keys.pseudonym_key_id
        self.parquet_crypto = ParquetCrypto(
            keys.parquet_master_key,
            footer_key_id=keys.parquet_footer_key_id,
            pii_key_id=keys.parquet_pii_key_id,
        )
        self.lake: Lake = open_lake(
            self.tenant_dir, tenant, lake_url, endpoint_url=s3_endpoint_url, kms_key_id=s3_kms_key_id
        )
        # The caller holds the tenant lock, so no other load can be using a folder removed here.
        remove_stale_spill_folders(self.tenant_dir)
        row_group_size = row_group_rows(batch_rows) if batch_rows is not None else None
        self._connection = open_tenant_warehouse(home, tenant, keys, read_only=False, row_group_size=row_group_size)
        # One DuckDB thread: the load is a pipeline, and mapper-pii needs the other core. Freed
        # memory goes back to the system, and the memory limit grows only when a batch needs it.
        self._connection.execute("SET threads = 1")
        self._connection.execute("SET allocator_flush_threshold = '4MB'")
        # DuckDB's own checkpoint after a commit would run under the load's small memory limit. So the
        # writer checkpoints a large log itself, under a raised limit (see `MemoryBudget.for_write_out`).
        self._connection.execute("SET wal_autocheckpoint = '1TB'")
        self._memory = MemoryBudget(self._connection)
        wal_path = duckdb_path(home, tenant).with_name(duckdb_path(home, tenant).name + ".wal")
        self.writer = WarehouseWriter(self._connection, source, self._memory, wal_path, row_group_size)
        try:
            # Fold a write-ahead log left by a killed run into the database file before writing anything:
            # DuckDB 1.5.5 can lose committed updates when it later replays a log holding entries from
            # before and after such a restart.
            self.writer.checkpoint()
            self.writer.ensure_ledger()
            self.warehouse_id = self.writer.warehouse_id()
            self._last_loaded_at = self.writer.last_loaded_at()
            self._remove_uncommitted_files()
        except BaseException:
            self.close()
            raise
        logger.info("Opened the encrypted warehouse of tenant %r for source %r (lake: %s).", tenant, source, self.lake.describe())

    def stream_folder(self, stream: str) -> str:
        """Lake folder of the stream's Parquet files, relative to the lake root."""
        return stream_folder(self.source, stream)

    def next_loaded_at(self) -> datetime.datetime:
        """Return the load time of the next batch: now, but always later than the previous batch of the source.

        Readers of the lake order versions of a key by this time, so two batches never share it.
        """
        now = datetime.datetime.now(datetime.UTC)
        if self._last_loaded_at is not None and now <= self._last_loaded_at:
            now = self._last_loaded_at + _ONE_MICROSECOND
        self._last_loaded_at = now
        return now

    def finish(self) -> None:
        """Checkpoint the database and close the connection (end of a successful run)."""
        self.writer.checkpoint()
        self.close()

    def close(self) -> None:
        """Close the connection; DuckDB checkpoints on closing, under a raised memory limit."""
        try:
            self._memory.for_shutdown()
        except duckdb.Error:
            pass  # The database is already invalid; closing releases it all the same.
        self._connection.close()

    def _remove_uncommitted_files(self) -> None:
        """Delete lake files of this source that the ledger does not list.

        A run killed after publishing a file but before its DuckDB commit leaves
        such a file. Its records were never acknowledged by a STATE, so the tap
        sends them again; keeping the file would show them twice in the lake.
        """
        folder = f"parquet/{self.source}"
        committed = self.writer.committed_files()
        orphans = [path for path in self.lake.files(folder) if path not in committed]
        for path in orphans:
            self.lake.remove(path)

        temporary = self.lake.remove_temporary_files(folder) if isinstance(self.lake, LocalLake) else 0
        if orphans or temporary:
            logger.warning(
                "Removed %d uncommitted Parquet file(s) and %d temporary file(s) of source %r left by an "
                "interrupted run; their records are loaded again from the last saved state.",
                len(orphans),
                temporary,
                self.source,
            )
