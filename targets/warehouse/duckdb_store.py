"""Open a tenant's DuckDB database, encrypted with AES-GCM, as the catalog `wh`.

Encrypted writes need OpenSSL, which DuckDB 1.5.5 gets from its httpfs
extension. The extension is loaded from the PyPI package
`duckdb_extension_httpfs`, a signed official build that DuckDB's default
signature check accepts. Nothing is downloaded, and unsigned extensions stay
disallowed. After ATTACH the connection checks `duckdb_databases().encrypted`
and raises when it is false.
"""

from __future__ import annotations

import base64
import importlib.resources
import os
import re
import shutil
from pathlib import Path
from typing import Protocol

import duckdb

from privacy.keys import load_tenant_keys
from spendlake.paths import duckdb_path, tenant_dir
from targets.warehouse.errors import (
    EncryptionNotActiveError,
    WarehouseError,
    WarehouseKeyError,
    WarehouseLockedError,
    WarehouseNotFoundError,
)

ALIAS = "wh"
HTTPFS_PACKAGE = "duckdb_extension_httpfs"
#: DuckDB's row group size must be a multiple of its vector size.
VECTOR_ROWS = 2048
#: DuckDB's default row group size, kept for batches larger than this.
DEFAULT_ROW_GROUP_ROWS = 122_880

_CONNECTION_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_unsigned_extensions": False,
}
_LOCK_HOLDER = re.compile(r"PID (\d+)")
#: Name of a spill folder before the process id.
SPILL_PREFIX = ".duckdb-tmp-"


class DuckDBKeys(Protocol):
    """Key needed to open a warehouse; `privacy.keys.TenantKeys` provides it."""

    duckdb_key: bytes


__all__ = [
    "ALIAS",
    "WarehouseLockedError",
    "connect_warehouse",
    "httpfs_extension_path",
    "open_encrypted_database",
    "open_tenant_warehouse",
    "quote_identifier",
    "row_group_rows",
    "verify_encrypted",
]


def row_group_rows(batch_rows: int) -> int | None:
    """Return the row group size that lets DuckDB write batches of `batch_rows` rows straight to its file.

    A transaction that inserts at least one whole row group writes its rows to
    the database file as compressed row groups. A smaller one goes through the
    write-ahead log, and each later checkpoint compresses its rows again, which
    took about three times as long for one million rows in batches of 25,000.
    Batches that are a multiple of the row group size also leave no partly
    filled row groups for a checkpoint to merge. None keeps DuckDB's default,
    for batches smaller than one vector.
    """
    if batch_rows < VECTOR_ROWS:
        return None
    if batch_rows >= DEFAULT_ROW_GROUP_ROWS:
        return DEFAULT_ROW_GROUP_ROWS
    return batch_rows // VECTOR_ROWS * VECTOR_ROWS


def connect_warehouse(home: str | os.PathLike[str], tenant: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open the tenant's warehouse attached as `wh` (with `USE wh` done) and encryption checked.

    A writer creates the database (and the tenant keyring) on first use; a reader
    raises `WarehouseNotFoundError` when no load has run yet. Raises
    `WarehouseLockedError` while another process writes to the database.
    """
    home = Path(home)
    path = duckdb_path(home, tenant)
    if read_only and not path.exists():
        msg = f"Tenant {tenant!r} has no warehouse yet ({path}); run a load with target-warehouse first."
        raise WarehouseNotFoundError(msg)

    # A reader must never create keys: new keys could not open the existing data anyway.
    keys = load_tenant_keys(home, tenant, create=not read_only)
    return open_tenant_warehouse(home, tenant, keys, read_only=read_only)


def open_tenant_warehouse(
    home: Path,
    tenant: str,
    keys: DuckDBKeys,
    *,
    read_only: bool,
    row_group_size: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the tenant's warehouse with already loaded keys; see `connect_warehouse`.

    `row_group_size` sets the rows per row group this connection writes (see `row_group_rows`).
    """
    folder = tenant_dir(home, tenant)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    # One spill folder per process, because concurrent read-only processes may spill at once.
    temp_directory = spill_folder(folder, os.getpid())
    connection = open_encrypted_database(
        duckdb_path(home, tenant),
        keys.duckdb_key,
        read_only=read_only,
        temp_directory=temp_directory,
        row_group_size=row_group_size,
    )
    connection.execute(f"USE {ALIAS}")
    return connection


def spill_folder(tenant_folder: Path, pid: int) -> Path:
    """Return the folder where DuckDB in process `pid` spills data that does not fit its memory limit."""
    return tenant_folder / f"{SPILL_PREFIX}{pid}"


def remove_stale_spill_folders(tenant_folder: Path) -> int:
    """Delete the spill folders of processes that no longer run (killed ones leave them); return how many.

    The files in them are encrypted, and no process uses them any more. A
    folder of a running process, such as an open `spendlake query`, stays.
    """
    removed = 0
    for folder in tenant_folder.glob(f"{SPILL_PREFIX}*"):
        pid = folder.name.removeprefix(SPILL_PREFIX)
        if not pid.isdigit() or int(pid) == os.getpid() or _process_runs(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it runs under another user
    return True


def open_encrypted_database(
    path: Path,
    key: bytes,
    *,
    read_only: bool,
    temp_directory: Path,
    row_group_size: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """Return an in-memory connection with `path` attached as `wh`, encrypted under `key`."""
    connection = duckdb.connect(":memory:", config=_CONNECTION_CONFIG)
    try:
        attach_encrypted_database(
            connection, path, key, read_only=read_only, temp_directory=temp_directory, row_group_size=row_group_size
        )
    except BaseException:
        connection.close()
        raise
    return connection


def attach_encrypted_database(
    connection: duckdb.DuckDBPyConnection,
    path: Path,
    key: bytes,
    *,
    read_only: bool,
    temp_directory: Path,
    row_group_size: int | None = None,
) -> None:
    """Attach `path` as `wh` to an open connection, encrypted under `key`, and check that encryption is active.

    Also used by tools that own the connection, such as dbt-duckdb.
    """
    connection.execute(f"LOAD {_quote_literal(str(httpfs_extension_path()))}")
    # Spill files contain table data in clear unless this is on, and its default is false.
    connection.execute("SET temp_file_encryption = true")
    connection.execute("SET temp_directory = ?", [str(temp_directory)])
    _attach(connection, path, key, read_only=read_only, row_group_size=row_group_size)
    verify_encrypted(connection, path)


def httpfs_extension_path() -> Path:
    """Return the httpfs extension file that matches the installed DuckDB version."""
    version = duckdb.__version__
    try:
        package = importlib.resources.files(HTTPFS_PACKAGE)
    except ModuleNotFoundError:
        package = None

    candidate = package / "extensions" / f"v{version}" / "httpfs.duckdb_extension" if package else None
    if candidate is None or not candidate.is_file():
        msg = (
            f"The httpfs extension for DuckDB {version} is missing: install duckdb-extension-httpfs=={version}. "
            f"It provides the OpenSSL crypto DuckDB needs to write encrypted databases."
        )
        raise EncryptionNotActiveError(msg)
    return Path(str(candidate))


def verify_encrypted(connection: duckdb.DuckDBPyConnection, path: Path, alias: str = ALIAS) -> None:
    """Raise `EncryptionNotActiveError` unless DuckDB reports the attached database as encrypted."""
    row = connection.execute(
        "SELECT encrypted FROM duckdb_databases() WHERE database_name = ?",
        [alias],
    ).fetchone()
    if row is None or row[0] is not True:
        msg = (
            f"DuckDB reports the database {path} (attached as {alias!r}) as not encrypted; "
            f"refusing to use it. Move the file away so that an encrypted database is created."
        )
        raise EncryptionNotActiveError(msg)


def quote_identifier(name: str) -> str:
    """Quote a schema, table or column name for DuckDB SQL."""
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _attach(
    connection: duckdb.DuckDBPyConnection, path: Path, key: bytes, *, read_only: bool, row_group_size: int | None
) -> None:
    encoded_key = base64.b64encode(key).decode("ascii")
    options = "ENCRYPTION_KEY ?, READ_ONLY" if read_only else "ENCRYPTION_KEY ?"
    if row_group_size is not None:
        options += f", ROW_GROUP_SIZE {int(row_group_size)}"
    # NOTE: DuckDB 1.5.5 cannot bind the path of ATTACH (parser error), so the path is a quoted literal.
    statement = f"ATTACH {_quote_literal(str(path))} AS {ALIAS} ({options})"
    try:
        connection.execute(statement, [encoded_key])
    except duckdb.Error as error:
        raise _attach_error(error, path, encoded_key) from None


def _attach_error(error: duckdb.Error, path: Path, encoded_key: str) -> WarehouseError:
    """Translate DuckDB's ATTACH errors into errors that name the fix."""
    text = str(error)
    if "Could not set lock" in text:
        holder = _LOCK_HOLDER.search(text)
        process = f"PID {holder.group(1)}" if holder else "another process"
        msg = (
            f"The warehouse {path} is locked by {process}. DuckDB allows one writing process, or several "
            f"read-only ones when none writes. Wait for that process to finish (a target-warehouse load or "
            f"a `spendlake transform` run), or stop it (an open `spendlake query` session), and retry."
        )
        return WarehouseLockedError(msg)

    if "Wrong encryption key" in text:
        msg = (
            f"The DuckDB key in this tenant's keyring does not open {path}: the keyring and the database "
            f"do not belong together. Restore the keyring (and master key) the database was created with."
        )
        return WarehouseKeyError(msg)

    if "is not encrypted" in text:
        msg = (
            f"{path} is an unencrypted DuckDB database, and this target writes only encrypted ones. "
            f"Move the file (and any .wal file next to it) away so that an encrypted database is created."
        )
        return EncryptionNotActiveError(msg)

    if "read-only crypto module" in text:
        msg = (
            "DuckDB has no OpenSSL crypto module loaded, so it cannot write an encrypted database. "
            "Check that duckdb-extension-httpfs matches the installed DuckDB version."
        )
        return EncryptionNotActiveError(msg)

    detail = text if encoded_key not in text else type(error).__name__
    return WarehouseError(f"DuckDB could not attach {path}: {detail}")
