"""dbt-duckdb plugin that attaches a tenant's encrypted warehouse to dbt's connection as `wh`.

The profile names this module under `plugins:` with the tenant and the
spendlake home. The key comes from the tenant keyring, so it is never written
to the profile, the environment or dbt's logs, and dbt reads and writes the
database file through DuckDB's encryption: nothing is decrypted to disk.
"""

from __future__ import annotations

import os
import typing as t

from dbt.adapters.duckdb.plugins import BasePlugin

from privacy.keys import load_tenant_keys
from spendlake.paths import duckdb_path, spendlake_home, tenant_dir
from spendlake.tenant_lock import TenantLock
from targets.warehouse.duckdb_store import attach_encrypted_database, spill_folder
from targets.warehouse.errors import WarehouseNotFoundError


class Plugin(BasePlugin):
    """Attach the warehouse of the tenant named in the plugin's `tenant` setting."""

    def initialize(self, plugin_config: dict[str, t.Any]) -> None:
        tenant = str(plugin_config.get("tenant") or "").strip()
        if not tenant:
            msg = "The spendlake dbt plugin needs a tenant: set SPENDLAKE_TENANT or the plugin's `tenant` in profiles.yml."
            raise ValueError(msg)

        self.home = spendlake_home(plugin_config.get("home") or None)
        self.tenant = tenant
        self.path = duckdb_path(self.home, tenant)
        if not self.path.exists():
            msg = f"Tenant {tenant!r} has no warehouse yet ({self.path}); run a load with target-warehouse first."
            raise WarehouseNotFoundError(msg)

        # Held until dbt exits, so no load, key rotation or erasure changes the tables under the models.
        self.lock = TenantLock(self.home, tenant, "dbt")

    def configure_connection(self, conn: t.Any) -> None:
        keys = load_tenant_keys(self.home, self.tenant, create=False)
        attach_encrypted_database(
            conn,
            self.path,
            keys.duckdb_key,
            read_only=False,
            temp_directory=spill_folder(tenant_dir(self.home, self.tenant), os.getpid()),
        )
