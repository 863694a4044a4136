"""Which column type changes the warehouse accepts, shared by the DuckDB writer and the lake readers.

A later SCHEMA message may declare a field with another type than the stored
column. Three outcomes:

- widen: the new type represents every stored value exactly (integer to number,
  integer to decimal, a decimal to more decimals, date to timestamp, any scalar
  to string), so the column changes to the new type;
- keep: the new type is narrower but the stored column holds all its values
  (integer values into a stored number column), so the column stays and the
  batch is converted to it;
- incompatible: neither holds the other (boolean and integer, timestamp and
  number, number and decimal, which would lose exactness), and the load stops.
"""

from __future__ import annotations

import enum
import re

import pyarrow as pa

from targets.warehouse.arrow_schema import (
    BOOLEAN,
    DATE,
    INTEGER,
    MAX_DECIMAL_SCALE,
    NUMBER,
    STRING,
    TIMESTAMP,
    ColumnType,
    decimal_type,
)

_DECIMAL_TEXT = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
_SCALAR_KINDS = frozenset({"integer", "number", "decimal", "boolean", "date", "timestamp"})


class Change(enum.Enum):
    """Relation of a stored column type to a newly declared one."""

    SAME = "same"
    WIDEN = "widen"
    KEEP = "keep"
    INCOMPATIBLE = "incompatible"


def compare(stored: ColumnType, declared: ColumnType) -> Change:
    """Classify the change from the `stored` column type to the `declared` one."""
    if _storage_equal(stored, declared):
        return Change.SAME
    if widens_to(stored, declared):
        return Change.WIDEN
    if widens_to(declared, stored):
        return Change.KEEP
    return Change.INCOMPATIBLE


def wider(first: ColumnType, second: ColumnType) -> ColumnType | None:
    """Return whichever type represents the other's values exactly, or None when neither does."""
    if _storage_equal(first, second) or widens_to(second, first):
        return first
    if widens_to(first, second):
        return second
    return None


def widens_to(narrow: ColumnType, wide: ColumnType) -> bool:
    """True when every value of `narrow` converts exactly and losslessly to `wide`."""
    if wide.kind in ("string", "json"):
        return narrow.kind in _SCALAR_KINDS
    if narrow.kind == "integer":
        return wide.kind == "number" or (wide.kind == "decimal" and _scale(wide) <= MAX_DECIMAL_SCALE)
    if narrow.kind == "decimal" and wide.kind == "decimal":
        return _scale(wide) > _scale(narrow)
    return narrow.kind == "date" and wide.kind == "timestamp"


def from_duckdb(data_type: str) -> ColumnType | None:
    """Return the column type of a DuckDB type name as `duckdb_columns()` reports it, or None if foreign."""
    match = _DECIMAL_TEXT.fullmatch(data_type)
    if match:
        return decimal_type(int(match.group(2)))
    return _BY_DUCKDB_NAME.get(data_type)


def from_arrow(data_type: pa.DataType) -> ColumnType | None:
    """Return the column type of an Arrow type written by the target, or None if foreign."""
    if pa.types.is_decimal(data_type):
        return decimal_type(data_type.scale)
    for candidate in (INTEGER, NUMBER, BOOLEAN, DATE, TIMESTAMP, STRING):
        if candidate.arrow.equals(data_type):
            return candidate
    return None


def _storage_equal(first: ColumnType, second: ColumnType) -> bool:
    """JSON and plain strings share one storage type (VARCHAR / string)."""
    return first.duckdb == second.duckdb and first.arrow.equals(second.arrow)


def _scale(column_type: ColumnType) -> int:
    return column_type.arrow.scale


_BY_DUCKDB_NAME = {
    column_type.duckdb: column_type for column_type in (STRING, TIMESTAMP, DATE, INTEGER, NUMBER, BOOLEAN)
}
