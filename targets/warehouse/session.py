"""The resources a target run keeps open: tenant keys, the DuckDB writer and the Parquet crypto."""

from __future__ import annotations

import logging
from pathlib import Path

from privacy.keys import load_tenant_keys
from spendlake.paths import parquet_dir, tenant_dir
from targets.warehouse.duckdb_store import open_tenant_warehouse
from targets.warehouse.duckdb_tables import WarehouseWriter
from targets.warehouse.parquet_crypto import ParquetCrypto

logger = logging.getLogger(__name__)


class WarehouseSession:
    """Open stores of one tenant and source for the length of a run."""

    def __init__(self, home: Path, tenant: str, source: str) -> None:
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
        self._connection = open_tenant_warehouse(home, tenant, keys, read_only=False)
        self.writer = WarehouseWriter(self._connection, source)
        try:
            self.writer.ensure_ledger()
            self.warehouse_id = self.writer.warehouse_id()
        except BaseException:
            self._connection.close()
            raise
        logger.info("Opened the encrypted warehouse of tenant %r for source %r.", tenant, source)

    def parquet_folder(self, stream: str) -> Path:
        """Folder of the stream's Parquet files."""
        return parquet_dir(self.home, self.tenant, self.source, stream)

    def finish(self) -> None:
        """Checkpoint the database and close the connection (end of a successful run)."""
        self.writer.checkpoint()
        self.close()

    def close(self) -> None:
        """Close the connection without a checkpoint; committed batches stay in the write-ahead log."""
        self._connection.close()
