"""Read one stream of a tenant's Parquet lake with each primary key once, as the DuckDB table shows it.

The target writes one file per committed batch, so a key appears in every file
that carried a version of it, and a deletion is a tombstone row of its own (the
key and `_sdc_deleted_at`, other columns null). `read_stream` merges the files
and keeps, per key, the version with the greatest `_loaded_at`. Between
equal load times the later file path wins, then the later row. When that
version is a tombstone and the key has a live version, the result is the
latest live version's values with `_sdc_deleted_at` and `_loaded_at` of the
tombstone: DuckDB marks the stored row deleted and keeps its values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from privacy.key_errors import KeyringError
from targets.warehouse.arrow_schema import DELETED_AT, INTEGER, LOADED_AT, NUMBER
from targets.warehouse.errors import WarehouseError, WarehouseKeyError, WarehouseSchemaError
from targets.warehouse.lake import Lake
from targets.warehouse.parquet_crypto import ParquetCrypto
from targets.warehouse.parquet_store import (
    KEY_PROPERTIES_METADATA_KEY,
    PII_COLUMNS_METADATA_KEY,
    ParquetKeys,
    check_folder_name,
    stream_folder,
)
from targets.warehouse.type_changes import from_arrow, wider


def checked_stream_folder(source: str, stream: str) -> str:
    """Return the lake folder of a stream, rejecting source and stream names that would leave it."""
    return stream_folder(check_folder_name(source), check_folder_name(stream))


def read_stream(
    lake: Lake,
    keys: ParquetKeys,
    source: str,
    stream: str,
    *,
    all_versions: bool = False,
) -> pa.Table:
    """Read every published file of a stream and return one row per key, sorted by the key columns.

    With `all_versions` every version is returned, sorted by key, then load
    time. A keyless stream returns all rows in file order. A stream without
    files returns an empty table without columns.
    """
    paths = lake.files(checked_stream_folder(source, stream))
    if not paths:
        return pa.table({})

    # NOTE: every version of the stream is held in memory at once; memory grows with the stream's history.
    parts = [_read_file(lake, keys, path) for path in paths]
    schema = unify_schemas(stream, paths, [part.schema for part in parts])
    table = pa.concat_tables(
        [_conform(stream, path, part, schema) for path, part in zip(paths, parts, strict=True)]
    )

    key_columns = key_properties(stream, paths[-1], schema)
    if not key_columns:
        return table
    if LOADED_AT not in schema.names:
        msg = (
            f"Stream {stream!r}: the lake files have no {LOADED_AT!r} column, so the latest version of a key "
            f"cannot be found. Only files written by target-warehouse can be read; remove the other files."
        )
        raise WarehouseSchemaError(msg)

    personal = _personal_columns(parts[-1].schema)
    return _select_versions(table, key_columns, personal, all_versions=all_versions)


def _personal_columns(schema: pa.Schema) -> list[str]:
    """Return the columns the newest file encrypts under the pii key (listed in its schema metadata)."""
    listed = (schema.metadata or {}).get(PII_COLUMNS_METADATA_KEY)
    try:
        names = json.loads(listed) if listed else []
    except ValueError:
        names = []
    return [name for name in names if isinstance(name, str)]


def unify_schemas(stream: str, paths: Sequence[str], schemas: Sequence[pa.Schema]) -> pa.Schema:
    """Merge the files' schemas: every column of any file, each with the wider of its types.

    Columns keep the order in which they first appear (oldest file first), and
    the result carries the newest file's schema metadata.
    """
    types: dict[str, pa.DataType] = {}
    origins: dict[str, str] = {}
    for path, schema in zip(paths, schemas, strict=True):
        for field in schema:
            current = types.get(field.name)
            if current is None:
                types[field.name] = field.type
                origins[field.name] = path
                continue

            merged = _wider_arrow_type(current, field.type)
            if merged is None:
                msg = (
                    f"Stream {stream!r}, column {field.name!r}: the lake file {origins[field.name]} stores it as "
                    f"{current} and {path} as {field.type}, and neither type holds the other's values. "
                    f"Rewrite or remove the files with the wrong type, then read the stream again."
                )
                raise WarehouseSchemaError(msg)
            if not merged.equals(current):
                types[field.name] = merged
                origins[field.name] = path

    fields = [pa.field(name, data_type, nullable=True) for name, data_type in types.items()]
    return pa.schema(fields, metadata=schemas[-1].metadata)


def key_properties(stream: str, path: str, schema: pa.Schema) -> list[str]:
    """Return the key columns stored in the metadata of the newest file `path` (`[]` when absent)."""
    raw = (schema.metadata or {}).get(KEY_PROPERTIES_METADATA_KEY)
    if raw is None:
        return []

    try:
        columns = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        columns = None
    if not isinstance(columns, list) or not all(isinstance(column, str) for column in columns):
        msg = (
            f"Stream {stream!r}: the metadata {KEY_PROPERTIES_METADATA_KEY.decode()!r} of the lake file {path} "
            f"is not a JSON list of column names. Rewrite the file with target-warehouse."
        )
        raise WarehouseSchemaError(msg)

    missing = [column for column in columns if column not in schema.names]
    if missing:
        msg = (
            f"Stream {stream!r}: the key columns {missing} named in the lake file {path} are in none of the "
            f"stream's files. Rewrite the file with target-warehouse."
        )
        raise WarehouseSchemaError(msg)
    return columns


def _read_file(lake: Lake, keys: ParquetKeys, path: str) -> pa.Table:
    """Read and decrypt one file, naming the file in any error."""
    properties = ParquetCrypto(keys.parquet_master_key).decryption_properties()
    try:
        with lake.open_input(path) as source:
            return pq.read_table(source, decryption_properties=properties)
    except (WarehouseKeyError, KeyringError) as error:
        msg = f"The lake file {lake.describe(path)} cannot be decrypted with this tenant's keys: {error}"
        raise WarehouseKeyError(msg) from None
    except (pa.ArrowException, OSError) as error:
        # The library message is left out because it may quote file contents.
        msg = (
            f"The lake file {lake.describe(path)} cannot be read as an encrypted Parquet file "
            f"({type(error).__name__}). Remove or restore the file, then read the stream again."
        )
        raise WarehouseError(msg) from None


def _wider_arrow_type(first: pa.DataType, second: pa.DataType) -> pa.DataType | None:
    """Return the Arrow type that can store the values of both types, or None when there is none."""
    if first.equals(second) or pa.types.is_null(second):
        return first
    if pa.types.is_null(first):
        return second

    first_type = from_arrow(first)
    second_type = from_arrow(second)
    if first_type is None or second_type is None:
        return None
    merged = wider(first_type, second_type)
    return merged.arrow if merged is not None else None


def _conform(stream: str, path: str, part: pa.Table, schema: pa.Schema) -> pa.Table:
    """Return `part` with the unified columns: missing ones null, narrower ones cast to the wider type."""
    columns = []
    for field in schema:
        if field.name not in part.column_names:
            columns.append(pa.nulls(part.num_rows, field.type))
            continue

        column = part.column(field.name)
        if not column.type.equals(field.type):
            column = _cast(stream, path, field.name, column, field.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def _cast(stream: str, path: str, name: str, column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    # An integer above 2**53 rounds to the nearest float64, as DuckDB does when it widens BIGINT to DOUBLE.
    safe = not (column.type.equals(INTEGER.arrow) and target.equals(NUMBER.arrow))
    try:
        return pc.cast(column, target, safe=safe)
    except pa.ArrowException:
        msg = (
            f"Stream {stream!r}, column {name!r}: a value in the lake file {path} does not fit the wider type "
            f"{target} (stored as {column.type}). Rewrite or remove that file, then read the stream again."
        )
        raise WarehouseSchemaError(msg) from None


def _row_numbers(count: int) -> pa.Array:
    """Return the int64 array 0, 1, …, count - 1."""
    ones = pa.nulls(count, pa.int64()).fill_null(1)
    return pc.subtract(pc.cumulative_sum(ones), 1)


def _select_versions(
    table: pa.Table,
    key_columns: Sequence[str],
    personal: Sequence[str],
    *,
    all_versions: bool,
) -> pa.Table:
    """Pick and order rows of `table` by their key, load time and position, with DuckDB window functions."""
    versions = _version_index(table, key_columns)
    key_names = [f"k{position}" for position in range(len(key_columns))]
    connection = duckdb.connect()
    try:
        connection.register("versions", versions)
        if all_versions:
            order = connection.sql(_all_versions_sql(key_names)).to_arrow_table()
            return table.take(order.column("ordinal"))

        chosen = connection.sql(_latest_versions_sql(key_names)).to_arrow_table()
    finally:
        connection.close()

    return _merge_tombstones(table, chosen.column("value_ordinal"), chosen.column("meta_ordinal"), personal)


def _version_index(table: pa.Table, key_columns: Sequence[str]) -> pa.Table:
    """Build the columns the selection needs: keys renamed k0, k1, …, load time, tombstone flag and row position."""
    if DELETED_AT in table.column_names:
        deleted = pc.is_valid(table.column(DELETED_AT))
    else:
        deleted = pa.nulls(table.num_rows, pa.bool_()).fill_null(False)

    columns = {f"k{position}": table.column(name) for position, name in enumerate(key_columns)}
    columns["loaded_at"] = table.column(LOADED_AT)
    columns["deleted"] = deleted
    columns["ordinal"] = _row_numbers(table.num_rows)
    return pa.table(columns)


def _latest_versions_sql(key_names: Sequence[str]) -> str:
    """Return per key the row of its latest version (`meta_ordinal`) and of its latest live one (`value_ordinal`).

    A key with no live version takes both from its latest tombstone.
    """
    keys = ", ".join(key_names)
    latest_first = f"PARTITION BY {keys} ORDER BY loaded_at DESC NULLS LAST, ordinal DESC"
    same_key = " AND ".join(f"latest.{name} IS NOT DISTINCT FROM live.{name}" for name in key_names)
    key_order = ", ".join(f"latest.{name}" for name in key_names)
    return f"""
        WITH latest AS (
            SELECT {keys}, ordinal FROM versions
            QUALIFY row_number() OVER ({latest_first}) = 1
        ),
        live AS (
            SELECT {keys}, ordinal FROM versions WHERE NOT deleted
            QUALIFY row_number() OVER ({latest_first}) = 1
        )
        SELECT latest.ordinal AS meta_ordinal, coalesce(live.ordinal, latest.ordinal) AS value_ordinal
        FROM latest LEFT JOIN live ON {same_key}
        ORDER BY {key_order}
    """


def _all_versions_sql(key_names: Sequence[str]) -> str:
    keys = ", ".join(key_names)
    return f"SELECT ordinal FROM versions ORDER BY {keys}, loaded_at NULLS LAST, ordinal"


def _merge_tombstones(
    table: pa.Table,
    value_rows: pa.ChunkedArray,
    meta_rows: pa.ChunkedArray,
    personal: Sequence[str],
) -> pa.Table:
    """Take each key's values from its latest live row, and load time and deletion time from its latest row.

    A deleted key keeps its marketing values but not its personal ones, as in the DuckDB table.
    """
    result = table.take(value_rows)
    for name in (LOADED_AT, DELETED_AT):
        if name in table.column_names:
            position = result.schema.get_field_index(name)
            result = result.set_column(position, result.schema.field(name), table.column(name).take(meta_rows))
    if DELETED_AT not in result.column_names:
        return result

    deleted = pc.is_valid(result.column(DELETED_AT))
    for name in personal:
        if name in result.column_names:
            position = result.schema.get_field_index(name)
            column = result.column(name)
            emptied = pc.if_else(deleted, pa.nulls(len(column), column.type), column)
            result = result.set_column(position, result.schema.field(name), emptied)
    return result
