"""Map a stream's JSON Schema to columns with one Arrow type and one DuckDB type each.

This module is the single type mapping shared by the Parquet writer and the
DuckDB writer, so both stores always agree on a column's type:

| JSON Schema                          | Arrow                    | DuckDB                   |
|--------------------------------------|--------------------------|--------------------------|
| string                               | string                   | VARCHAR                  |
| string, format date-time             | timestamp[us, tz=UTC]    | TIMESTAMP WITH TIME ZONE |
| string, format date                  | date32                   | DATE                     |
| integer                              | int64                    | BIGINT                   |
| number (or integer and number)       | float64                  | DOUBLE                   |
| number with multipleOf 10^-s (s<=18) | decimal128(38, s)        | DECIMAL(38,s)            |
| integer whose minimum or maximum     | decimal128(38, 0)        | DECIMAL(38,0)            |
|   lies outside the int64 range       |                          |                          |
| boolean                              | bool                     | BOOLEAN                  |
| object, array, or no type at all     | string holding JSON      | VARCHAR holding JSON     |

Columns always come from the SCHEMA message, never from the values in a batch.
Money and other exact amounts declare their scale with `multipleOf` (0.01 for
cents, 0.0001 for Magento's four decimals) and are stored exactly; a value
with more decimals than declared is rejected, never rounded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa

from targets.warehouse.errors import WarehouseSchemaError

LOADED_AT = "_loaded_at"
"""Column added to every table and Parquet file: when the batch was committed (UTC)."""

DELETED_AT = "_sdc_deleted_at"
"""Tombstone column: a record with this set marks its key deleted. Only the key and this value are required."""

PII_APPLIED_KEYWORD = "x-pii-applied"
#: mapper-pii actions whose output still derives from personal data; such columns get the `pii` column key.
PSEUDONYMISED_ACTIONS = frozenset({"hmac", "encrypt", "truncate_ip", "generalize", "redact"})


@dataclass(frozen=True)
class ColumnType:
    """One storage type: its kind (used by the batch builder), Arrow type and DuckDB type."""

    kind: str
    arrow: pa.DataType
    duckdb: str


STRING = ColumnType("string", pa.string(), "VARCHAR")
TIMESTAMP = ColumnType("timestamp", pa.timestamp("us", tz="UTC"), "TIMESTAMP WITH TIME ZONE")
DATE = ColumnType("date", pa.date32(), "DATE")
INTEGER = ColumnType("integer", pa.int64(), "BIGINT")
NUMBER = ColumnType("number", pa.float64(), "DOUBLE")
BOOLEAN = ColumnType("boolean", pa.bool_(), "BOOLEAN")
JSON = ColumnType("json", pa.string(), "VARCHAR")

DECIMAL_PRECISION = 38
MAX_DECIMAL_SCALE = 18
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def decimal_type(scale: int) -> ColumnType:
    """Return the exact decimal type with `scale` digits after the point (precision 38)."""
    return ColumnType(
        "decimal",
        pa.decimal128(DECIMAL_PRECISION, scale),
        f"DECIMAL({DECIMAL_PRECISION},{scale})",
    )


@dataclass(frozen=True)
class Column:
    """One declared property of a stream.

    `json_shapes` lists the JSON types a `json` column accepts (`object`, `array`);
    it is empty when the property declares no type and so accepts any value.
    """

    name: str
    type: ColumnType
    nullable: bool
    pii: bool
    declared: str
    json_shapes: tuple[str, ...] = ()
    pii_class: str | None = None
    pii_action: str | None = None
    required: bool = False


@dataclass(frozen=True)
class StreamLayout:
    """The columns and primary key of one stream, derived from its SCHEMA message."""

    stream: str
    columns: tuple[Column, ...]
    key_properties: tuple[str, ...]

    @property
    def has_tombstones(self) -> bool:
        """True when the stream declares `_sdc_deleted_at`, so its records may be tombstones."""
        return any(column.name == DELETED_AT for column in self.columns)

    @property
    def column_names(self) -> list[str]:
        """Names of the declared columns, in SCHEMA order, without `_loaded_at`."""
        return [column.name for column in self.columns]

    @property
    def pii_columns(self) -> list[str]:
        """Columns the mapper pseudonymised; Parquet encrypts them under the `pii` key."""
        return [column.name for column in self.columns if column.pii]

    @property
    def record_schema(self) -> pa.Schema:
        """Arrow schema of the declared columns, in SCHEMA order."""
        return pa.schema([pa.field(column.name, column.type.arrow, nullable=column.nullable) for column in self.columns])

    @property
    def arrow_schema(self) -> pa.Schema:
        """Arrow schema of a batch: the declared columns, then `_loaded_at`."""
        return self.record_schema.append(pa.field(LOADED_AT, TIMESTAMP.arrow, nullable=False))


def layout_from_schema(
    stream: str,
    schema: Mapping[str, Any],
    key_properties: Sequence[str] | None,
) -> StreamLayout:
    """Build the stream's layout, raising `WarehouseSchemaError` for what cannot be stored."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        msg = f"Stream {stream!r}: the SCHEMA message has no 'properties' object; declare the stream's fields."
        raise WarehouseSchemaError(msg)

    keys = tuple(key_properties or ())
    required = set(schema.get("required") or ())
    # A tombstone carries only its key, so the other columns of such a stream stay nullable in storage.
    tombstones = DELETED_AT in properties
    columns = tuple(
        _column(stream, name, prop, is_key=name in keys, is_required=name in required, tombstones=tombstones)
        for name, prop in properties.items()
    )

    _check_names(stream, [column.name for column in columns])
    _check_keys(stream, keys, properties)
    return StreamLayout(stream=stream, columns=columns, key_properties=keys)


def _column(stream: str, name: str, prop: Any, *, is_key: bool, is_required: bool, tombstones: bool) -> Column:
    if not isinstance(prop, Mapping):
        msg = f"Stream {stream!r}, field {name!r}: the property schema must be a JSON object."
        raise WarehouseSchemaError(msg)

    types, formats = _declared_types(prop)
    column_type, declared = _resolve_type(stream, name, types, formats)
    column_type, declared = _exact_type(stream, name, prop, column_type, declared)
    has_null = "null" in types or not types
    required = is_key or (is_required and not has_null)
    nullable = not is_key and (tombstones or not required)
    json_shapes = tuple(sorted(types & {"object", "array"})) if column_type is JSON else ()
    # Personal data kept in clear by an explicit policy choice gets the column key too.
    pii_class = prop.get("x-pii")
    pii_action = prop.get(PII_APPLIED_KEYWORD)
    pii = pii_action in PSEUDONYMISED_ACTIONS or pii_class not in (None, "none")
    return Column(
        name,
        column_type,
        nullable,
        pii,
        declared,
        json_shapes,
        pii_class=pii_class if isinstance(pii_class, str) else None,
        pii_action=pii_action if isinstance(pii_action, str) else None,
        required=required,
    )


def _declared_types(prop: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """Collect the JSON types and string formats of a property, following anyOf/oneOf."""
    members = prop.get("anyOf") or prop.get("oneOf")
    if isinstance(members, list):
        types: set[str] = set()
        formats: set[str] = set()
        for member in members:
            if isinstance(member, Mapping):
                member_types, member_formats = _declared_types(member)
                types |= member_types
                formats |= member_formats
        return types, formats

    declared = prop.get("type")
    if isinstance(declared, str):
        types = {declared}
    elif isinstance(declared, list):
        types = {item for item in declared if isinstance(item, str)}
    elif "properties" in prop:
        types = {"object"}
    elif "items" in prop:
        types = {"array"}
    else:
        types = set()

    fmt = prop.get("format")
    formats = {fmt} if "string" in types and isinstance(fmt, str) else set()
    return types, formats


def _resolve_type(stream: str, name: str, types: set[str], formats: set[str]) -> tuple[ColumnType, str]:
    """Pick the column type; a union of unrelated scalar types is an error, not a guess."""
    values = types - {"null"}
    if not values:
        # No type (any JSON value) is kept as JSON text; a null-only field is an always-null string.
        return (JSON, "any") if not types else (STRING, "null")

    if values <= {"object", "array"}:
        return JSON, "/".join(sorted(values))
    if values == {"string"}:
        return _string_type(formats)
    if values == {"integer"}:
        return INTEGER, "integer"
    if values <= {"integer", "number"}:
        return NUMBER, "number"
    if values == {"boolean"}:
        return BOOLEAN, "boolean"

    msg = (
        f"Stream {stream!r}, field {name!r}: the type union {sorted(values)} has no single column type. "
        f"Declare one JSON type (optionally with 'null') for this field in the tap or mapper schema."
    )
    raise WarehouseSchemaError(msg)


def _exact_type(
    stream: str,
    name: str,
    prop: Mapping[str, Any],
    column_type: ColumnType,
    declared: str,
) -> tuple[ColumnType, str]:
    """Turn a number with a decimal `multipleOf`, or an integer wider than int64, into DECIMAL."""
    if column_type is NUMBER and "multipleOf" in prop:
        scale = _decimal_scale(stream, name, prop["multipleOf"])
        return decimal_type(scale), f"number (multipleOf {prop['multipleOf']})"

    if column_type is INTEGER and _beyond_int64(prop):
        return decimal_type(0), "integer (beyond int64)"
    return column_type, declared


def _decimal_scale(stream: str, name: str, step: Any) -> int:
    """Return s when `step` is 10^-s (1, 0.1, 0.01, ...), else raise `WarehouseSchemaError`."""
    text = format(Decimal(str(step)), "f") if isinstance(step, int | float | Decimal) and not isinstance(step, bool) else ""
    exponent = Decimal(text).as_tuple().exponent if text else None
    if text and Decimal(text) == Decimal(1).scaleb(exponent) and -MAX_DECIMAL_SCALE <= exponent <= 0:
        return -exponent
    msg = (
        f"Stream {stream!r}, field {name!r}: 'multipleOf' must be 1 or a power of ten below it (0.1, 0.01, ...) "
        f"with at most {MAX_DECIMAL_SCALE} decimals to declare an exact decimal column; change it in the tap or "
        f"mapper schema, or remove it to store the field as DOUBLE."
    )
    raise WarehouseSchemaError(msg)


def _beyond_int64(prop: Mapping[str, Any]) -> bool:
    bounds = [prop.get("minimum"), prop.get("maximum")]
    numbers = [bound for bound in bounds if isinstance(bound, int | float | Decimal) and not isinstance(bound, bool)]
    return any(not INT64_MIN <= bound <= INT64_MAX for bound in numbers)


def _string_type(formats: set[str]) -> tuple[ColumnType, str]:
    # The SDK treats a property as date-like when any anyOf member carries the format.
    if "date-time" in formats:
        return TIMESTAMP, "string (date-time)"
    if "date" in formats:
        return DATE, "string (date)"
    return STRING, "string"


def _check_names(stream: str, names: list[str]) -> None:
    """Reject names DuckDB cannot hold side by side (it compares identifiers case-insensitively)."""
    seen: dict[str, str] = {}
    for name in names:
        if not name:
            msg = f"Stream {stream!r}: a property has an empty name; rename it in the tap or mapper schema."
            raise WarehouseSchemaError(msg)
        if name.lower() == LOADED_AT:
            msg = f"Stream {stream!r}: the property name {name!r} is reserved for the load time; rename the property."
            raise WarehouseSchemaError(msg)
        other = seen.get(name.lower())
        if other is not None:
            msg = (
                f"Stream {stream!r}: properties {other!r} and {name!r} differ only in case, "
                f"but DuckDB column names are case-insensitive; rename one of them."
            )
            raise WarehouseSchemaError(msg)
        seen[name.lower()] = name


def _check_keys(stream: str, keys: tuple[str, ...], properties: Mapping[str, Any]) -> None:
    missing = [key for key in keys if key not in properties]
    if missing:
        msg = f"Stream {stream!r}: key properties {missing} are not declared in the schema's properties."
        raise WarehouseSchemaError(msg)
    if len(set(keys)) != len(keys):
        msg = f"Stream {stream!r}: key properties {list(keys)} list a property twice."
        raise WarehouseSchemaError(msg)
