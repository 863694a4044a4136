"""Copy the DuckDB database under a new key after rows were deleted, even when an earlier attempt failed.

DuckDB keeps deleted values in the database file until the database is copied
into a fresh file (`privacy.duckdb_rekey`). Erasure and retention write a
marker file before they delete rows and remove it once the copy is done. A
marker left by a failed run makes the next erasure or retention run copy the
database even if it deletes nothing itself, because a rerun finds no rows left
to delete.

The caller holds the tenant lock.
"""

from __future__ import annotations

import os
from pathlib import Path

from privacy.keyring import fsync_folder
from spendlake.paths import tenant_dir

MARKER_FILE = ".compaction-pending"


class CompactionError(RuntimeError):
    """Raised when the database cannot be copied under a new key; the marker stays for the next run."""


def marker_path(home: Path, tenant: str) -> Path:
    """Return the path of the tenant's compaction marker."""
    return tenant_dir(home, tenant) / MARKER_FILE


def mark_rows_deleted(home: Path, tenant: str) -> None:
    """Record, durably, that rows are about to be deleted and the database must be copied afterwards."""
    path = marker_path(home, tenant)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    fsync_folder(path.parent)


def compact_if_marked(home: Path, tenant: str) -> bool:
    """Copy the database under a new key when the marker is set, then clear it; return whether it copied."""
    from privacy.duckdb_rekey import rekey_database

    path = marker_path(home, tenant)
    if not path.exists():
        return False

    try:
        rekey_database(home, tenant)
    except Exception as error:
        # DuckDB's own messages can quote stored values, so only their class is shown.
        detail = f"{type(error).__name__}: {error}" if _is_spendlake_error(error) else type(error).__name__
        msg = (
            f"Rows were deleted from tenant {tenant!r}'s DuckDB database, but copying it under a new key failed "
            f"({detail}), so the deleted values may still be in the file. Fix the cause and run the erasure or "
            "retention again: it copies the database first."
        )
        raise CompactionError(msg) from None

    path.unlink()
    fsync_folder(path.parent)
    return True


def _is_spendlake_error(error: Exception) -> bool:
    module = type(error).__module__
    return module.startswith(("privacy.", "targets.", "spendlake."))
