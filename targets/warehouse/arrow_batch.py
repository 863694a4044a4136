"""Build one typed Arrow table from a batch of Singer records.

Each column is checked against its declared type before it reaches pyarrow.
pyarrow 26 coerces silently in places (1.5 into int64 becomes 1, True into
float64 becomes 1.0), and its errors quote the value. A mismatch raises
`RecordTypeError` naming the stream, field and record position, never the value.

Date-time strings are parsed here, in bulk, instead of per record in the SDK: the
SDK's parse error quotes the value.
"""

from __future__ import annotations

import array
import datetime
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from targets.warehouse.arrow_schema import (
    DECIMAL_PRECISION,
    DELETED_AT,
    INT64_MAX,
    INT64_MIN,
    LOADED_AT,
    TIMESTAMP,
    Column,
    StreamLayout,
)
from targets.warehouse.errors import MissingKeyError, RecordTypeError

_json_encoder = msgspec.json.Encoder(decimal_format="number")
_raw_decoder = msgspec.json.Decoder(float_hook=Decimal)


class _Mismatch(Exception):
    """A value failed its column's check; carries the reason and position, not the value."""

    def __init__(self, reason: str, position: int, *, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position
        self.missing = missing


class RawJsonColumn:
    """A JSON or decimal column as the fast decoder read it: every value's raw JSON text, `null` for a missing value."""

    def __init__(self, raws: Sequence[msgspec.Raw]) -> None:
        data = b"".join(raws)
        offsets = array.array("i", itertools.accumulate(map(len, raws), initial=0))
        self.texts = pa.Array.from_buffers(pa.binary(), len(raws), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        #: True when a text has a `\\u` escape, which may stand for a lone surrogate.
        self.has_escape = b"\\u" in data

    def __len__(self) -> int:
        return len(self.texts)

    def values(self) -> list[Any]:
        """Decode every text (the checked path); raises `_Mismatch` at a text that does not decode."""
        return [_decoded_text(text, position) for position, text in enumerate(self.texts.to_pylist())]


def build_batch(
    layout: StreamLayout,
    columns: Mapping[str, list[Any]],
    line_numbers: Sequence[int],
    loaded_at: datetime.datetime,
) -> pa.Table:
    """Return the batch as a table with `layout.arrow_schema`, `_loaded_at` set to `loaded_at`."""
    records = build_records(layout, columns, line_numbers)
    return with_loaded_at(pa.Table.from_batches([records]), layout, loaded_at)


def build_records(
    layout: StreamLayout,
    columns: Mapping[str, list[Any]],
    line_numbers: Sequence[int],
    *,
    typed: bool = False,
) -> pa.RecordBatch:
    """Return the declared columns as one record batch (no `_loaded_at` yet).

    `columns` maps each declared column to its values, one per record; a
    mismatch raises `RecordTypeError` naming the input line of the record.
    With `typed`, every value already has its column's Python type or is None
    (the fast decoder checked them), so the per-value type checks are skipped.
    """
    tombstones = _tombstone_positions(layout, columns)
    keys = frozenset(layout.key_properties)
    arrays = [
        _column_array(layout.stream, column, columns[column.name], line_numbers, tombstones, column.name in keys, typed)
        for column in layout.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=layout.record_schema)


def with_loaded_at(table: pa.Table, layout: StreamLayout, loaded_at: datetime.datetime) -> pa.Table:
    """Append the `_loaded_at` column, the same time for every row, giving `layout.arrow_schema`."""
    stamps = pa.repeat(pa.scalar(loaded_at, TIMESTAMP.arrow), table.num_rows)
    table = table.append_column(layout.arrow_schema.field(LOADED_AT), stamps)
    return table.replace_schema_metadata(None)


def replace_lone_surrogates(text: str) -> str:
    """Replace unpaired UTF-16 surrogates, which UTF-8 cannot encode, with U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _tombstone_positions(layout: StreamLayout, columns: Mapping[str, list[Any]]) -> frozenset[int]:
    """Positions of records that mark their key deleted; they need only the key and `_sdc_deleted_at`."""
    if not layout.has_tombstones:
        return frozenset()
    return frozenset(position for position, value in enumerate(columns[DELETED_AT]) if value is not None)


def _column_array(
    stream: str,
    column: Column,
    values: list[Any],
    line_numbers: Sequence[int],
    tombstones: frozenset[int],
    is_key: bool,
    typed: bool,
) -> pa.Array:
    try:
        if isinstance(values, RawJsonColumn):
            convert = _raw_decimals if column.type.kind == "decimal" else _raw_json_texts
            stored = convert(values, column)
            if stored is not None and not (column.required and stored.null_count):
                return stored
            values = values.values()
        if column.required:
            _require_present(values, tombstones if column.nullable else frozenset())
        if typed and column.type.kind in _TYPED_CONVERTERS:
            return _TYPED_CONVERTERS[column.type.kind](values, column)
        return _CONVERTERS[column.type.kind](values, column)
    except _Mismatch as mismatch:
        msg = (
            f"Line {line_numbers[mismatch.position]}, stream {stream!r}, field {column.name!r}: {mismatch.reason} "
            f"(declared type: {column.declared}). Fix the value at the source or the field's type in the tap or "
            f"mapper schema; nothing from this batch was written."
        )
        raise (MissingKeyError if is_key and mismatch.missing else RecordTypeError)(msg) from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # Checks above should catch every case; this keeps pyarrow's message (which quotes the value) out.
        msg = (
            f"Stream {stream!r}, field {column.name!r}: pyarrow could not store a value of this batch as "
            f"{column.type.arrow} (declared type: {column.declared}); nothing from this batch was written."
        )
        raise RecordTypeError(msg) from None


def _require_present(values: list[Any], exempt: frozenset[int]) -> None:
    if None not in values:
        return
    for position, value in enumerate(values):
        if value is None and position not in exempt:
            reason = "the value is missing or null, but the schema requires it (key or required field)"
            raise _Mismatch(reason, position, missing=True)


def _type_name(value: Any) -> str:
    return type(value).__name__


def _strings(values: list[Any], column: Column) -> pa.Array:
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass  # Name the record below.
    except UnicodeEncodeError:
        cleaned = [None if type(value) is not str else replace_lone_surrogates(value) for value in values]
        values = [value if type(value) is not str else cleaned[index] for index, value in enumerate(values)]

    for position, value in enumerate(values):
        if value is not None and type(value) is not str:
            raise _Mismatch(f"expected a string, found {_type_name(value)}", position)
    return pa.array(values, pa.string())


def _integers(values: list[Any], column: Column) -> pa.Array:
    if not all(value is None or type(value) is int for value in values):
        values = [_to_int(value, position) for position, value in enumerate(values)]

    try:
        return pa.array(values, pa.int64())
    except OverflowError:
        pass  # Find the record below.
    for position, value in enumerate(values):
        if value is not None and not INT64_MIN <= value <= INT64_MAX:
            reason = (
                "the integer does not fit in 64 bits; declare the field's 'minimum' or 'maximum' beyond the int64 "
                "range to store it as DECIMAL(38,0)"
            )
            raise _Mismatch(reason, position)
    raise _Mismatch("the integer cannot be stored as int64", 0)


def _decimals(values: list[Any], column: Column) -> pa.Array:
    try:
        return pa.array(values, column.type.arrow)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        pass  # Find and name the failing record below.

    scale = column.type.arrow.scale
    converted = [_to_decimal(value, position, scale) for position, value in enumerate(values)]
    return pa.array(converted, column.type.arrow)


def _raw_decimals(column_texts: RawJsonColumn, column: Column) -> pa.Array | None:
    """Convert raw JSON numbers to exact decimals in Arrow, or return None when one needs the checked path.

    Arrow's cast from text rejects a value that would lose digits, and a JSON
    string, object or other non-number fails the first-character check.
    """
    texts = column_texts.texts
    is_null, accepted = _first_bytes(texts, _NUMBER_STARTS)
    if not accepted:
        return None
    try:
        numbers = texts.cast(pa.string()).cast(column.type.arrow)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pc.if_else(is_null, pa.scalar(None, column.type.arrow), numbers)


def _to_decimal(value: Any, position: int, scale: int) -> Decimal | None:
    if value is None:
        return None
    if type(value) is bool or not isinstance(value, int | float | Decimal):
        raise _Mismatch(f"expected a number, found {_type_name(value)}", position)

    number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    if not number.is_finite():
        raise _Mismatch("the number is not finite", position)

    exponent = number.as_tuple().exponent
    if exponent < -scale and number != number.quantize(Decimal(1).scaleb(-scale), rounding="ROUND_DOWN"):
        raise _Mismatch(f"the number has more than {scale} decimals, which the column cannot hold exactly", position)
    if number.adjusted() >= DECIMAL_PRECISION - scale:
        raise _Mismatch(f"the number has more than {DECIMAL_PRECISION - scale} digits before the point", position)
    return number


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
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise _Mismatch("the number is beyond the range of a DOUBLE column", position)
        return number
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


#: First byte of the JSON text of each shape, for checking raw values without decoding them.
_SHAPE_OPENERS: dict[str, bytes] = {"object": b"{", "array": b"["}
_NULL_START = pa.scalar(b"n", pa.binary())
_NULL_START_ARRAY = pa.array([b"n"], pa.binary())
_NUMBER_STARTS = pa.array([character.encode() for character in "-0123456789"], pa.binary())


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


def _raw_json_texts(column_texts: RawJsonColumn, column: Column) -> pa.Array | None:
    """Store raw JSON texts as they came, or return None when one needs the checked path.

    Works on the whole column in Arrow. A text with a `\\u` escape may contain
    a lone surrogate, so it goes the checked way. So does a text whose first
    byte does not match the declared shapes, because that is a type error.
    """
    if column_texts.has_escape:
        return None
    texts = column_texts.texts
    openers = [_SHAPE_OPENERS[shape] for shape in column.json_shapes]
    is_null, accepted = _first_bytes(texts, pa.array(openers, pa.binary()) if openers else None)
    if not accepted:
        return None

    try:
        strings = texts.cast(pa.string())
    except pa.ArrowInvalid:
        return None  # Not UTF-8; the checked path names the record.
    return pc.if_else(is_null, pa.scalar(None, pa.string()), strings)


def _first_bytes(texts: pa.BinaryArray, allowed: pa.Array | None) -> tuple[pa.Array, bool]:
    """Return which texts are JSON null, and whether every other text starts with a byte in `allowed` (None: any).

    Valid JSON that starts with `n` is `null`, so the first byte identifies nulls.
    """
    first = pc.binary_slice(texts, 0, 1)
    is_null = pc.equal(first, _NULL_START)
    if allowed is None:
        return is_null, True
    accepted = pc.is_in(first, pa.concat_arrays([allowed, _NULL_START_ARRAY]))
    return is_null, pc.all(accepted).as_py() is not False


def _decoded_text(text: bytes, position: int) -> Any:
    try:
        return _raw_decoder.decode(text)
    except (msgspec.DecodeError, RecursionError):
        pass  # Lone surrogates and deep nesting need `json`.
    try:
        return json.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise _Mismatch("the value is not valid UTF-8 JSON, or nests too deeply", position) from None


def _replace_surrogates_deep(value: Any) -> Any:
    if isinstance(value, str):
        return replace_lone_surrogates(value)
    if isinstance(value, dict):
        return {_replace_surrogates_deep(key): _replace_surrogates_deep(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_surrogates_deep(item) for item in value]
    return value


def _typed_integers(values: list[Any], column: Column) -> pa.Array:
    try:
        return pa.array(values, pa.int64())
    except OverflowError:
        # The checked converter finds and names the record beyond int64.
        return _integers(values, column)


def _typed_numbers(values: list[Any], column: Column) -> pa.Array:
    # The fast decoder rejects numbers beyond the range of a double.
    return pa.array(values, pa.float64())


def _typed_booleans(values: list[Any], column: Column) -> pa.Array:
    return pa.array(values, pa.bool_())


def _typed_timestamps(values: list[Any], column: Column) -> pa.Array:
    try:
        return pa.array(values, pa.string()).cast(TIMESTAMP.arrow)
    except (pa.ArrowInvalid, UnicodeEncodeError):
        return _timestamps(values, column)


def _typed_dates(values: list[Any], column: Column) -> pa.Array:
    try:
        return pa.array(values, pa.string()).cast(pa.date32())
    except (pa.ArrowInvalid, UnicodeEncodeError):
        return _dates(values, column)


#: Converters for values whose Python types the fast decoder has checked; other kinds use `_CONVERTERS`.
_TYPED_CONVERTERS: dict[str, Callable[[list[Any], Column], pa.Array]] = {
    "integer": _typed_integers,
    "number": _typed_numbers,
    "boolean": _typed_booleans,
    "timestamp": _typed_timestamps,
    "date": _typed_dates,
}

_CONVERTERS: dict[str, Callable[[list[Any], Column], pa.Array]] = {
    "string": _strings,
    "integer": _integers,
    "number": _numbers,
    "boolean": _booleans,
    "timestamp": _timestamps,
    "date": _dates,
    "json": _json_texts,
    "decimal": _decimals,
}
