"""Build one typed Arrow table from a batch of Singer records.

Each column is checked against its declared type before it reaches pyarrow.
pyarrow 26 coerces silently in places (1.5 into int64 becomes 1, True into
float64 becomes 1.0), and its errors quote the value. A mismatch raises
`RecordTypeError` naming the stream, field and record position, never the value.

Date-time strings are parsed here, in bulk, instead of per record in the SDK: the
SDK's parse error quotes the value.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import msgspec
import pyarrow as pa

from targets.warehouse.arrow_schema import TIMESTAMP, Column, StreamLayout
from targets.warehouse.errors import RecordTypeError

_json_encoder = msgspec.json.Encoder(decimal_format="number")


class _Mismatch(Exception):
    """A value failed its column's check; carries the reason and position, not the value."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position


def build_batch(layout: StreamLayout, records: Sequence[dict[str, Any]], loaded_at: datetime.datetime) -> pa.Table:
    """Return the batch as a table with `layout.arrow_schema`, `_loaded_at` set to `loaded_at`."""
    arrays = [_column_array(layout.stream, column, records) for column in layout.columns]
    arrays.append(pa.array([loaded_at] * len(records), TIMESTAMP.arrow))
    return pa.Table.from_arrays(arrays, schema=layout.arrow_schema)


def replace_lone_surrogates(text: str) -> str:
    """Replace unpaired UTF-16 surrogates, which UTF-8 cannot encode, with U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _column_array(stream: str, column: Column, records: Sequence[dict[str, Any]]) -> pa.Array:
    values = [record.get(column.name) for record in records]
    try:
        if not column.nullable:
            _require_present(values)
        return _CONVERTERS[column.type.kind](values, column)
    except _Mismatch as mismatch:
        msg = (
            f"Stream {stream!r}, field {column.name!r}, record {mismatch.position + 1} of {len(values)} "
            f"in the batch: {mismatch.reason} (declared type: {column.declared}). Fix the value at the "
            f"source or the field's type in the tap or mapper schema; nothing from this batch was written."
        )
        raise RecordTypeError(msg) from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # Checks above should catch every case; this keeps pyarrow's message (which quotes the value) out.
        msg = (
            f"Stream {stream!r}, field {column.name!r}: pyarrow could not store a value of this batch as "
            f"{column.type.arrow} (declared type: {column.declared}); nothing from this batch was written."
        )
        raise RecordTypeError(msg) from None


def _require_present(values: list[Any]) -> None:
    for position, value in enumerate(values):
        if value is None:
            reason = "the value is missing or null, but the schema requires it (key or required field)"
            raise _Mismatch(reason, position)


def _type_name(value: Any) -> str:
    return type(value).__name__


def _strings(values: list[Any], column: Column) -> pa.Array:
    for position, value in enumerate(values):
        if value is not None and type(value) is not str:
            raise _Mismatch(f"expected a string, found {_type_name(value)}", position)

    try:
        return pa.array(values, pa.string())
    except UnicodeEncodeError:
        cleaned = [None if value is None else replace_lone_surrogates(value) for value in values]
        return pa.array(cleaned, pa.string())


def _integers(values: list[Any], column: Column) -> pa.Array:
    if not all(value is None or type(value) is int for value in values):
        values = [_to_int(value, position) for position, value in enumerate(values)]

    for position, value in enumerate(values):
        if value is not None and not -(2**63) <= value < 2**63:
            raise _Mismatch("the integer does not fit in 64 bits", position)
    return pa.array(values, pa.int64())


def _to_int(value: Any, position: int) -> int | None:
    if value is None or (type(value) is int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Decimal | float):
        raise _Mismatch("expected an integer, found a number with a fractional part", position)
    raise _Mismatch(f"expected an integer, found {_type_name(value)}", position)


def _numbers(values: list[Any], column: Column) -> pa.Array:
    converted = [_to_float(value, position) for position, value in enumerate(values)]
    return pa.array(converted, pa.float64())


def _to_float(value: Any, position: int) -> float | None:
    if value is None:
        return None
    if type(value) in (int, float) or isinstance(value, Decimal):
        return float(value)
    raise _Mismatch(f"expected a number, found {_type_name(value)}", position)


def _booleans(values: list[Any], column: Column) -> pa.Array:
    for position, value in enumerate(values):
        if value is not None and type(value) is not bool:
            raise _Mismatch(f"expected a boolean, found {_type_name(value)}", position)
    return pa.array(values, pa.bool_())


def _timestamps(values: list[Any], column: Column) -> pa.Array:
    if all(value is None or type(value) is str for value in values):
        try:
            return pa.array(values, pa.string()).cast(TIMESTAMP.arrow)
        except (pa.ArrowInvalid, UnicodeEncodeError):
            pass  # Arrow rejects offsets-free and nanosecond strings that Python parses; fall through.

    parsed = [_to_datetime(value, position) for position, value in enumerate(values)]
    return pa.array(parsed, TIMESTAMP.arrow)


def _to_datetime(value: Any, position: int) -> datetime.datetime | None:
    if value is None:
        return None
    if type(value) is str:
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            reason = "expected an ISO 8601 date-time string, found a string that does not parse"
            raise _Mismatch(reason, position) from None
    if not isinstance(value, datetime.datetime):
        raise _Mismatch(f"expected an ISO 8601 date-time string, found {_type_name(value)}", position)
    # Singer date-times without an offset are UTC by convention.
    return value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)


def _dates(values: list[Any], column: Column) -> pa.Array:
    if all(value is None or type(value) is str for value in values):
        try:
            return pa.array(values, pa.string()).cast(pa.date32())
        except (pa.ArrowInvalid, UnicodeEncodeError):
            pass  # Fall through to find and name the failing record.

    parsed = [_to_date(value, position) for position, value in enumerate(values)]
    return pa.array(parsed, pa.date32())


def _to_date(value: Any, position: int) -> datetime.date | None:
    if value is None:
        return None
    if type(value) is datetime.date:
        return value
    if type(value) is str:
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            reason = "expected an ISO 8601 date string (YYYY-MM-DD), found a string that does not parse"
            raise _Mismatch(reason, position) from None
    raise _Mismatch(f"expected an ISO 8601 date string, found {_type_name(value)}", position)


_SHAPE_TYPES: dict[str, type] = {"object": dict, "array": list}


def _json_texts(values: list[Any], column: Column) -> pa.Array:
    shapes = column.json_shapes
    accepted = tuple(_SHAPE_TYPES[shape] for shape in shapes) if shapes else object
    texts = [_to_json(value, position, accepted, shapes) for position, value in enumerate(values)]
    return pa.array(texts, pa.string())


def _to_json(value: Any, position: int, accepted: type | tuple[type, ...], shapes: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, accepted):
        expected = " or ".join(f"a JSON {shape}" for shape in shapes)
        raise _Mismatch(f"expected {expected}, found {_type_name(value)}", position)

    try:
        return _json_encoder.encode(value).decode("utf-8")
    except UnicodeEncodeError:
        return _json_encoder.encode(_replace_surrogates_deep(value)).decode("utf-8")
    except TypeError:
        raise _Mismatch(f"a nested value of this {_type_name(value)} cannot be written as JSON", position) from None


def _replace_surrogates_deep(value: Any) -> Any:
    if isinstance(value, str):
        return replace_lone_surrogates(value)
    if isinstance(value, dict):
        return {_replace_surrogates_deep(key): _replace_surrogates_deep(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_surrogates_deep(item) for item in value]
    return value


_CONVERTERS: dict[str, Callable[[list[Any], Column], pa.Array]] = {
    "string": _strings,
    "integer": _integers,
    "number": _numbers,
    "boolean": _booleans,
    "timestamp": _timestamps,
    "date": _dates,
    "json": _json_texts,
}
