"""Files of a DuckDB re-encryption, and the check of whether its file swap happened.

`privacy.duckdb_rekey` copies the database into `warehouse.duckdb.rekey` under a
new key, records that key as pending in the keyring together with the SHA-256 of
the new file's main header, then renames the new file over `warehouse.duckdb`.
The main header (the first 4096 bytes) contains the random salt of the file's
encryption and DuckDB 1.5 never rewrites it, so its hash identifies the file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from spendlake.paths import duckdb_path

HEADER_BYTES = 4096
REKEY_SUFFIX = ".rekey"


def rekey_path(home: Path, tenant: str) -> Path:
    """Return the path of the re-encrypted copy while it is being written."""
    path = duckdb_path(home, tenant)
    return path.with_name(path.name + REKEY_SUFFIX)


def header_sha256(path: Path) -> str | None:
    """Return the SHA-256 (hex) of a DuckDB file's main header, or None when the file is missing or short."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(HEADER_BYTES)
    except FileNotFoundError:
        return None
    if len(header) < HEADER_BYTES:
        return None
    return hashlib.sha256(header).hexdigest()


def swap_completed(home: Path, tenant: str, expected_header_sha256: str) -> bool:
    """Return True when the re-encrypted file has replaced the tenant's database."""
    if rekey_path(home, tenant).exists():
        return False
    return header_sha256(duckdb_path(home, tenant)) == expected_header_sha256
