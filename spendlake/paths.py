"""Tenant ids and the on-disk layout under the spendlake home folder.

Every plugin and the CLI resolve paths through this module so that the layout
(`keys/`, `warehouse/<tenant>/…`) is defined once.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

HOME_ENV = "SPENDLAKE_HOME"
DEFAULT_HOME_NAME = ".spendlake"

_TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class InvalidTenantError(ValueError):
    """Raised when a tenant id cannot be used as a folder and key name."""


def validate_tenant(tenant: str) -> str:
    """Return `tenant` unchanged if it is a valid tenant id, else raise."""
    if not isinstance(tenant, str) or not _TENANT_PATTERN.match(tenant):
        msg = (
            "Invalid tenant id: use 1-63 characters of lower-case letters, digits, "
            "'-' or '_', starting with a letter or digit (for example 'demo' or 'acme-eu')."
        )
        raise InvalidTenantError(msg)
    return tenant


def spendlake_home(configured: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the home folder: explicit setting, then `SPENDLAKE_HOME`, then `./.spendlake`."""
    if configured:
        return Path(configured).expanduser().resolve()
    from_env = os.environ.get(HOME_ENV)
    if from_env:
        return Path(from_env).expanduser().resolve()
    return (Path.cwd() / DEFAULT_HOME_NAME).resolve()


def keys_dir(home: Path) -> Path:
    """Folder of the master-key file and the wrapped per-tenant keyrings."""
    return home / "keys"


def tenant_dir(home: Path, tenant: str) -> Path:
    """Folder of one tenant's warehouse (DuckDB database and Parquet lake)."""
    return home / "warehouse" / validate_tenant(tenant)


def duckdb_path(home: Path, tenant: str) -> Path:
    """Path of the tenant's encrypted DuckDB database."""
    return tenant_dir(home, tenant) / "warehouse.duckdb"


def dbt_work_dir(home: Path, tenant: str) -> Path:
    """Folder of dbt's compiled SQL and run results for one tenant; deleted with the tenant's warehouse."""
    return tenant_dir(home, tenant) / "dbt"


def dashboard_path(home: Path, tenant: str) -> Path:
    """Default path of the tenant's HTML dashboard; deleted with the tenant's warehouse."""
    return tenant_dir(home, tenant) / "dashboard" / "dashboard.html"


def privacy_dir(home: Path, tenant: str) -> Path:
    """Folder of one tenant's privacy records: the audit log and the erasure list."""
    return home / "privacy" / validate_tenant(tenant)


def policy_path(project_root: Path, tenant: str) -> Path:
    """Default location of a tenant's PII policy file in a project."""
    return project_root / "policies" / f"{validate_tenant(tenant)}.yaml"


def parquet_dir(home: Path, tenant: str, source: str, stream: str) -> Path:
    """Folder of one stream's encrypted Parquet files in the tenant's lake."""
    return tenant_dir(home, tenant) / "parquet" / source / stream


def make_private_folder(folder: Path) -> Path:
    """Create `folder` and every missing parent with mode 0700 (existing folders keep their mode); return it.

    `Path.mkdir(parents=True)` would give the parents the default mode (0755
    under the usual umask), so each folder is made on its own. Raises
    `FileExistsError` when a path on the way is a file, and `OSError` otherwise.
    """
    missing = []
    current = folder
    while not os.path.isdir(current) and current.parent != current:
        missing.append(current)
        current = current.parent

    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            if not path.is_dir():
                raise
            # Another process made it meanwhile, and it keeps the mode it got.
            continue
        # The umask may have cleared bits of mkdir's mode, so the mode is set again.
        path.chmod(0o700)
    return folder
