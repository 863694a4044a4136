"""Encrypted Parquet files of the tenant's lake: one file per committed batch.

A file appears under its final name only once it is complete and synced to disk
(written to a hidden temporary name in the same folder, then `os.replace`), so
readers never see a partial file.
"""

from __future__ import annotations

import datetime
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from privacy.keyring import fsync_folder
from targets.warehouse.errors import WarehouseSchemaError
from targets.warehouse.parquet_crypto import ParquetCrypto

COMPRESSION = "zstd"
#: Arrow schema metadata key listing the columns encrypted under the `pii` key, as a JSON list,
#: so that a rewrite (key rotation, erasure) gives the same columns the same key.
PII_COLUMNS_METADATA_KEY = b"spendlake.pii_columns"
_MAX_SEGMENT_BYTES = 255


class ParquetKeys(Protocol):
    """Key lookup needed to read a file; `privacy.keys.TenantKeys` provides it."""

    def parquet_master_key(self, key_id: str) -> bytes: ...


def parquet_file_name(written_at: datetime.datetime) -> str:
    """Return `part-<UTC yyyymmddTHHMMSS>-<uuid4 hex>.parquet` for a batch written at `written_at`."""
    stamp = written_at.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    return f"part-{stamp}-{uuid.uuid4().hex}.parquet"


def check_folder_name(stream: str) -> str:
    """Return `stream` if it can name a folder of the lake, else raise `WarehouseSchemaError`."""
    problem = None
    if stream in ("", ".", ".."):
        problem = "it is empty, '.' or '..'"
    elif any(char in stream for char in "/\\") or any(ord(char) < 32 for char in stream):
        problem = "it contains '/', '\\' or a control character"
    elif len(stream.encode("utf-8", "surrogatepass")) > _MAX_SEGMENT_BYTES:
        problem = f"it is longer than {_MAX_SEGMENT_BYTES} bytes"

    if problem:
        msg = (
            f"Stream name {stream!r} cannot be used as a Parquet folder name because {problem}; "
            f"rename the stream (for example with a stream map alias)."
        )
        raise WarehouseSchemaError(msg)
    return stream


def write_parquet_batch(
    table: pa.Table,
    folder: Path,
    crypto: ParquetCrypto,
    pii_columns: Sequence[str],
    written_at: datetime.datetime,
) -> Path:
    """Write `table` as one new encrypted file in `folder` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    final_path = folder / parquet_file_name(written_at)
    temporary_path = folder / f".{final_path.name}.tmp"
    properties = crypto.encryption_properties(table.column_names, pii_columns)
    table = with_pii_columns_metadata(table, pii_columns)

    try:
        with open(temporary_path, "xb") as handle:
            pq.write_table(table, handle, encryption_properties=properties, compression=COMPRESSION)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary_path, final_path)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise

    fsync_folder(folder)
    return final_path


def with_pii_columns_metadata(table: pa.Table, pii_columns: Sequence[str]) -> pa.Table:
    """Return `table` with its pii column list stored in the schema metadata (kept in the encrypted footer)."""
    metadata = dict(table.schema.metadata or {})
    metadata[PII_COLUMNS_METADATA_KEY] = json.dumps(list(pii_columns)).encode("utf-8")
    return table.replace_schema_metadata(metadata)


def read_parquet_file(
    path: str | os.PathLike[str],
    keys: ParquetKeys,
    *,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Read one encrypted Parquet file of the lake with the tenant's keys.

    Reading a pseudonymised column needs the `pii` master key; the other columns
    need only `footer`.
    """
    crypto = ParquetCrypto(keys.parquet_master_key)
    return pq.read_table(
        path,
        columns=list(columns) if columns is not None else None,
        decryption_properties=crypto.decryption_properties(),
    )
