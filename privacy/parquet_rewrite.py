"""Rewrite one encrypted Parquet file of the lake with fresh data keys, optionally dropping rows.

Key rotation rewrites every file under the keyring's new generation; erasure and
retention rewrite the files that contain rows to remove. The new file gets new
data keys (new `FileEncryptionProperties`) and keeps the columns, the schema
metadata and the split between the footer key and the pii column key.

The new file atomically replaces the old one. It is written to a hidden
temporary file in the same folder, synced, and renamed over the old name, and
then the folder is synced. When no row remains, the file is deleted instead.

The caller holds the tenant lock (`spendlake.tenant_lock.tenant_lock`).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import typing as t
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from privacy.keyring import fsync_folder
from targets.warehouse.arrow_schema import LOADED_AT
from targets.warehouse.parquet_crypto import ParquetCrypto
from targets.warehouse.parquet_store import COMPRESSION, PII_COLUMNS_METADATA_KEY

__all__ = [
    "ParquetRewriteError",
    "RewriteResult",
    "file_master_key_ids",
    "lake_files",
    "pii_columns_of",
    "remove_stale_rewrites",
    "rewrite_parquet_file",
]

REWRITE_SUFFIX = ".rewrite.tmp"
#: Columns the target adds itself and never encrypts under the pii key.
TARGET_COLUMNS = frozenset({LOADED_AT})

KeepRows = Callable[[pa.Table], pa.Array | pa.ChunkedArray]
"""Returns a boolean per row of a table: true keeps the row. A null is rejected."""


class ReadKeys(t.Protocol):
    """Key lookup that reads a file; `privacy.keys.TenantKeys` provides it."""

    def parquet_master_key(self, key_id: str) -> bytes: ...


class WriteKeys(ReadKeys, t.Protocol):
    """Key lookup plus the master key ids new files use; `privacy.keys.TenantKeys` provides it."""

    @property
    def parquet_footer_key_id(self) -> str: ...

    @property
    def parquet_pii_key_id(self) -> str: ...


class ParquetRewriteError(RuntimeError):
    """Raised when a file cannot be rewritten; the old file is left in place."""


@dataclass(frozen=True)
class RewriteResult:
    """Outcome of one rewrite: rows before and after, and whether the file was deleted."""

    path: Path
    rows_before: int
    rows_after: int
    removed: bool

    @property
    def rows_removed(self) -> int:
        """Rows dropped by the `keep` filter."""
        return self.rows_before - self.rows_after


def rewrite_parquet_file(
    path: Path,
    read_keys: ReadKeys,
    write_keys: WriteKeys,
    keep: KeepRows | None = None,
) -> RewriteResult:
    """Rewrite `path` under `write_keys`' current master keys with new data keys, keeping rows where `keep` is true.

    `keep` is called once per row group with that row group as a table (None keeps
    every row). The file is deleted when no row remains (`removed=True`). On any
    error the temporary file is deleted and the old file stays as it was.
    """
    path = Path(path)
    source = pq.ParquetFile(path, decryption_properties=ParquetCrypto(read_keys.parquet_master_key).decryption_properties())
    schema = source.schema_arrow
    pii_columns = pii_columns_of(schema)
    schema = _with_pii_columns(schema, pii_columns)

    write_crypto = ParquetCrypto(
        write_keys.parquet_master_key,
        footer_key_id=write_keys.parquet_footer_key_id,
        pii_key_id=write_keys.parquet_pii_key_id,
    )
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}{REWRITE_SUFFIX}")
    try:
        rows_before, rows_after = _copy_rows(source, temporary, schema, write_crypto, pii_columns, keep, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    finally:
        source.close()

    if rows_after == 0:
        temporary.unlink()
        path.unlink()
    else:
        os.replace(temporary, path)
    fsync_folder(path.parent)
    return RewriteResult(path=path, rows_before=rows_before, rows_after=rows_after, removed=rows_after == 0)


def pii_columns_of(schema: pa.Schema) -> list[str]:
    """Return the columns a file encrypts under the pii key.

    The target stores them in the schema metadata key `spendlake.pii_columns`.
    Without that entry every column except the target's own `_loaded_at` counts
    as pii, so an older file never moves a personal column under the footer key.
    """
    stored = (schema.metadata or {}).get(PII_COLUMNS_METADATA_KEY)
    if stored is None:
        return [name for name in schema.names if name not in TARGET_COLUMNS]

    try:
        listed = json.loads(stored)
    except ValueError:
        listed = None
    if not isinstance(listed, list) or not all(isinstance(name, str) for name in listed):
        msg = "The schema metadata 'spendlake.pii_columns' is not a JSON list of column names; the file was not written by target-warehouse."
        raise ParquetRewriteError(msg)
    return [name for name in schema.names if name in set(listed)]


def file_master_key_ids(path: Path, keys: ReadKeys) -> set[str]:
    """Return the master key ids that unwrap the file's footer key (reads the footer only)."""
    requested: set[str] = set()

    def recording_lookup(key_id: str) -> bytes:
        requested.add(key_id)
        return keys.parquet_master_key(key_id)

    # A new ParquetCrypto has an empty key cache, so the footer's key id is always requested.
    with pq.ParquetFile(path, decryption_properties=ParquetCrypto(recording_lookup).decryption_properties()) as parquet:
        _ = parquet.metadata.num_rows
    return requested


def lake_files(folder: Path) -> list[Path]:
    """Return the Parquet files under `folder`, skipping hidden (temporary) names."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.rglob("*.parquet") if path.is_file() and not path.name.startswith("."))


def remove_stale_rewrites(folder: Path) -> list[Path]:
    """Delete temporary files left by interrupted rewrites under `folder`; return them."""
    if not folder.is_dir():
        return []
    stale = sorted(path for path in folder.rglob(f".*{REWRITE_SUFFIX}") if path.is_file())
    for path in stale:
        path.unlink()
    return stale


def _copy_rows(
    source: pq.ParquetFile,
    temporary: Path,
    schema: pa.Schema,
    crypto: ParquetCrypto,
    pii_columns: Sequence[str],
    keep: KeepRows | None,
    path: Path,
) -> tuple[int, int]:
    rows_before = rows_after = 0
    properties = crypto.encryption_properties(schema.names, pii_columns)
    with open(temporary, "xb") as handle:
        # The rewrite replaces the file, so it takes the file's permissions.
        os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        with pq.ParquetWriter(handle, schema, encryption_properties=properties, compression=COMPRESSION) as writer:
            for table in _row_groups(source, schema):
                rows_before += table.num_rows
                kept_rows = table if keep is None else table.filter(_keep_mask(keep, table, path))
                rows_after += kept_rows.num_rows
                if kept_rows.num_rows:
                    writer.write_table(kept_rows)
        handle.flush()
        os.fsync(handle.fileno())
    return rows_before, rows_after


def _row_groups(source: pq.ParquetFile, schema: pa.Schema) -> Iterator[pa.Table]:
    for index in range(source.num_row_groups):
        yield source.read_row_group(index).replace_schema_metadata(schema.metadata)


def _keep_mask(keep: KeepRows, table: pa.Table, path: Path) -> pa.Array | pa.ChunkedArray:
    mask = keep(table)
    if not isinstance(mask, pa.Array | pa.ChunkedArray) or mask.type != pa.bool_() or len(mask) != table.num_rows:
        msg = f"The keep filter for {path} must return one boolean per row ({table.num_rows} rows); the file was not changed."
        raise ParquetRewriteError(msg)
    if mask.null_count:
        msg = (
            f"The keep filter for {path} returned null for {mask.null_count} row(s); return true or false for "
            f"every row. The file was not changed."
        )
        raise ParquetRewriteError(msg)
    return mask


def _with_pii_columns(schema: pa.Schema, pii_columns: Sequence[str]) -> pa.Schema:
    metadata = dict(schema.metadata or {})
    metadata[PII_COLUMNS_METADATA_KEY] = json.dumps(list(pii_columns)).encode("utf-8")
    return schema.with_metadata(metadata)

