"""Re-encrypt a tenant's DuckDB database into a fresh file under a new key.

DuckDB 1.5.5 keeps deleted values in the database file after `DELETE` and
`CHECKPOINT`, and after `VACUUM`, but `COPY FROM DATABASE` into a new file
writes only live rows. Erasure and retention therefore compact the database
this way, and key rotation uses the same step to move it to the new generation.

Steps, each leaving a warehouse that opens with the keyring if the process dies:

1. Checkpoint the old database so its write-ahead log is merged and removed.
2. Attach a new file `warehouse.duckdb.rekey` encrypted under a new random key
   (httpfs loaded, `temp_file_encryption` on, encryption verified), run
   `COPY FROM DATABASE`, compare the row count of every table, checkpoint,
   detach and fsync it.
3. Record the new key as `pending` in the keyring, with the SHA-256 of the new
   file's main header.
4. Rename the new file over `warehouse.duckdb` and sync the folder: the old
   file is gone.
5. Make the pending key the active one: the old key is gone from the keyring.

A loader that finds a pending key uses it only when the new file has replaced
the old one (`privacy.duckdb_swap.swap_completed`), and
`recover_interrupted_rekey` later commits or discards it.

The caller holds the tenant lock (`spendlake.tenant_lock.tenant_lock`) for the
whole call, so no load writes to the database meanwhile.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from privacy.duckdb_swap import header_sha256, rekey_path, swap_completed
from privacy.keyring import KEY_BYTES, fsync_file, fsync_folder
from privacy.keys import changing_keyring, load_tenant_keys
from spendlake.paths import duckdb_path, tenant_dir
from spendlake.tenant_lock import TenantBusyError, TenantLock
from targets.warehouse.duckdb_store import (
    ALIAS,
    open_encrypted_database,
    open_tenant_warehouse,
    quote_identifier,
    spill_folder,
    verify_encrypted,
)

FRESH_ALIAS = "rekeyed"


class RekeyError(RuntimeError):
    """Raised when the database cannot be re-encrypted; the old file and key stay in use."""


@dataclass(frozen=True)
class RekeyResult:
    """Outcome of a re-encryption: the row count of every copied table (`schema.table`)."""

    path: Path
    key_generation: int
    tables: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Rows copied across all tables."""
        return sum(self.tables.values())


def rekey_database(home: Path, tenant: str) -> RekeyResult:
    """Copy the tenant's database into a fresh file under a new key, swap the files and destroy the old key.

    The new key is sealed under the keyring's current generation. The caller
    must hold the tenant lock; `RekeyError` is raised when the lock is free.
    """
    _require_tenant_lock(home, tenant)
    recover_interrupted_rekey(home, tenant)
    path = duckdb_path(home, tenant)
    if not path.exists():
        msg = f"Tenant {tenant!r} has no DuckDB database ({path}); there is nothing to re-encrypt."
        raise RekeyError(msg)

    keys = load_tenant_keys(home, tenant)
    fresh = rekey_path(home, tenant)
    new_key = secrets.token_bytes(KEY_BYTES)
    try:
        tables = _copy_into_fresh_file(home, tenant, keys.duckdb_key, fresh, new_key)
        _check_no_write_ahead_log(path, fresh)
        os.chmod(fresh, stat.S_IMODE(path.stat().st_mode))
        fsync_file(fresh)
    except BaseException:
        remove_database_files(fresh)
        raise

    _stage_key(home, tenant, new_key, fresh)
    _swap_files(fresh, path)
    _commit_key(home, tenant)

    _verify_reopened(home, tenant, tables)
    return RekeyResult(path=path, key_generation=keys.generation, tables=tables)


def recover_interrupted_rekey(home: Path, tenant: str) -> str | None:
    """Finish or undo a re-encryption that stopped midway; return `committed`, `rolled back` or None.

    Commits the pending key when the new file replaced the database, else
    discards it, and deletes a leftover `warehouse.duckdb.rekey`. The caller
    holds the tenant lock.
    """
    outcome = None
    with changing_keyring(home, tenant) as keyring:
        pending = keyring.duckdb_record("pending")
        if pending is not None:
            if swap_completed(home, tenant, str(pending.get("file_header_sha256"))):
                keyring.commit_duckdb_key()
                outcome = "committed"
            else:
                keyring.discard_pending_duckdb_key()
                outcome = "rolled back"
            keyring.save()

    remove_database_files(rekey_path(home, tenant))
    return outcome


def copy_database(connection: duckdb.DuckDBPyConnection, source: str, target: str) -> dict[str, int]:
    """Run `COPY FROM DATABASE source TO target` and return the row count of every table.

    Raises `RekeyError` when a table's count differs between the two databases.
    """
    connection.execute(f"COPY FROM DATABASE {quote_identifier(source)} TO {quote_identifier(target)}")
    copied = table_row_counts(connection, target)
    original = table_row_counts(connection, source)
    if copied != original:
        differing = sorted(name for name in original.keys() | copied.keys() if original.get(name) != copied.get(name))
        msg = f"COPY FROM DATABASE gave different row counts for table(s) {', '.join(differing)}; the database was not replaced."
        raise RekeyError(msg)
    return copied


def table_row_counts(connection: duckdb.DuckDBPyConnection, database: str) -> dict[str, int]:
    """Return `{schema.table: rows}` for every table of an attached database."""
    names = connection.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY 1, 2",
        [database],
    ).fetchall()
    counts = {}
    for schema, table in names:
        qualified = ".".join(quote_identifier(part) for part in (database, schema, table))
        row = connection.execute(f"SELECT count(*) FROM {qualified}").fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


def remove_database_files(path: Path) -> None:
    """Delete a DuckDB file and its write-ahead log, if present."""
    path.unlink(missing_ok=True)
    wal_path(path).unlink(missing_ok=True)


def wal_path(path: Path) -> Path:
    """Return the write-ahead log path DuckDB uses for the database file `path`."""
    return path.with_name(path.name + ".wal")


def _copy_into_fresh_file(home: Path, tenant: str, old_key: bytes, fresh: Path, new_key: bytes) -> dict[str, int]:
    remove_database_files(fresh)
    temp_directory = spill_folder(tenant_dir(home, tenant), os.getpid())
    connection = open_encrypted_database(duckdb_path(home, tenant), old_key, read_only=False, temp_directory=temp_directory)
    try:
        # Merge the write-ahead log into the old file now, so no log of the old file outlives the swap.
        connection.execute(f"CHECKPOINT {ALIAS}")
        encoded_key = base64.b64encode(new_key).decode("ascii")
        # NOTE: DuckDB 1.5.5 cannot bind the path of ATTACH, so it is a quoted literal; the key is bound.
        connection.execute(f"ATTACH {_quote_literal(str(fresh))} AS {FRESH_ALIAS} (ENCRYPTION_KEY ?)", [encoded_key])
        verify_encrypted(connection, fresh, alias=FRESH_ALIAS)
        tables = copy_database(connection, ALIAS, FRESH_ALIAS)
        connection.execute(f"CHECKPOINT {FRESH_ALIAS}")
        connection.execute(f"DETACH {FRESH_ALIAS}")
    finally:
        connection.close()
    return tables


def _check_no_write_ahead_log(path: Path, fresh: Path) -> None:
    for database in (path, fresh):
        if wal_path(database).exists():
            msg = (
                f"{wal_path(database)} still exists after a checkpoint, so another process may be writing to the "
                f"warehouse. Stop it and retry; the database was not replaced."
            )
            raise RekeyError(msg)


def _stage_key(home: Path, tenant: str, new_key: bytes, fresh: Path) -> None:
    header = header_sha256(fresh)
    if header is None:
        msg = f"The re-encrypted copy {fresh} is missing or shorter than a DuckDB header; the database was not replaced."
        raise RekeyError(msg)
    with changing_keyring(home, tenant) as keyring:
        keyring.stage_duckdb_key(new_key, header)
        keyring.save()


def _swap_files(fresh: Path, path: Path) -> None:
    os.replace(fresh, path)
    fsync_folder(path.parent)


def _commit_key(home: Path, tenant: str) -> None:
    with changing_keyring(home, tenant) as keyring:
        keyring.commit_duckdb_key()
        keyring.save()


def _verify_reopened(home: Path, tenant: str, expected: dict[str, int]) -> None:
    connection = open_tenant_warehouse(home, tenant, load_tenant_keys(home, tenant), read_only=True)
    try:
        found = table_row_counts(connection, ALIAS)
    finally:
        connection.close()
    if found != expected:
        msg = (
            f"The re-encrypted warehouse of tenant {tenant!r} opened with different table row counts than were "
            f"copied; restore the database from backup and report this."
        )
        raise RekeyError(msg)


def _require_tenant_lock(home: Path, tenant: str) -> None:
    """Raise `RekeyError` when the tenant lock is free.

    flock locks belong to an open file, so a second lock attempt fails even when this process holds the lock.
    """
    try:
        lock = TenantLock(home, tenant, "the re-encryption check")
    except TenantBusyError:
        return
    lock.release()
    msg = "rekey_database needs its caller to hold the tenant lock: call it inside spendlake.tenant_lock.tenant_lock(home, tenant, ...)."
    raise RekeyError(msg)


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
