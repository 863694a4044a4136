"""Typed Arrow batches: strict checks per column, errors that name the field and never the value."""

from __future__ import annotations

import datetime
from decimal import Decimal

import msgspec
import pyarrow as pa
import pytest

from targets.warehouse.arrow_batch import (
    build_batch,
    build_records,
    replace_lone_surrogates,
)
from targets.warehouse.arrow_schema import layout_from_schema
from targets.warehouse.errors import DuplicateKeyError, RecordTypeError
from targets.warehouse.primary_key import reject_duplicate_keys
from targets.warehouse.record_decoder import BatchDecoder

LOADED_AT = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
MARKER = "batch-canary-2b7e19"


#: Input line of the first record of each test batch; record n sits on line FIRST_LINE + n - 1.
FIRST_LINE = 41


def _lines(count: int) -> list[int]:
    return list(range(FIRST_LINE, FIRST_LINE + count))


def _build(layout, records: list[dict]) -> pa.Table:
    columns = {name: [record.get(name) for record in records] for name in layout.column_names}
    return build_batch(layout, columns, _lines(len(records)), LOADED_AT)


def _batch(prop: dict, values: list, key_properties: tuple[str, ...] = ()) -> pa.Table:
    layout = layout_from_schema("events", {"properties": {"value": prop}}, key_properties)
    return _build(layout, [{"value": value} for value in values])


def test_integers_accept_whole_decimals() -> None:
    table = _batch({"type": "integer"}, [1, Decimal("2"), Decimal("3.0"), None, 2**63 - 1])

    assert table.column("value").to_pylist() == [1, 2, 3, None, 2**63 - 1]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "expected an integer, found bool"),
        (Decimal("1.5"), "expected an integer, found a number with a fractional part"),
        (MARKER, "expected an integer, found str"),
        (2**63, "the integer does not fit in 64 bits; declare the field's 'minimum' or 'maximum'"),
    ],
)
def test_integers_reject_other_values(value: object, reason: str) -> None:
    expected = f"Line {FIRST_LINE + 1}, stream 'events', field 'value': {reason}"
    with pytest.raises(RecordTypeError, match=expected) as caught:
        _batch({"type": "integer"}, [1, value])

    assert MARKER not in str(caught.value)


def test_numbers_convert_decimals() -> None:
    table = _batch({"type": "number"}, [Decimal("0.1"), 2, 2.5, None])

    assert table.column("value").to_pylist() == [0.1, 2.0, 2.5, None]


@pytest.mark.parametrize("value", [True, "1.5", [1]])
def test_numbers_reject_other_values(value: object) -> None:
    with pytest.raises(RecordTypeError, match=f"Line {FIRST_LINE}, stream 'events', field 'value': expected a number"):
        _batch({"type": "number"}, [value])


def test_booleans_reject_integers() -> None:
    with pytest.raises(RecordTypeError, match="expected a boolean, found int"):
        _batch({"type": "boolean"}, [True, 1])


def test_strings_reject_numbers() -> None:
    with pytest.raises(RecordTypeError, match="expected a string, found int"):
        _batch({"type": "string"}, ["a", 5])


def test_timestamps_parse_offsets_and_naive_values() -> None:
    values = [
        "2024-01-02T03:04:05Z",
        "2024-01-02T05:04:05+02:00",
        "2024-01-02T03:04:05",
        "2024-01-02T03:04:05.123456789Z",
        datetime.datetime(2024, 1, 2, 3, 4, 5),
        None,
    ]

    table = _batch({"type": ["null", "string"], "format": "date-time"}, values)

    parsed = table.column("value").to_pylist()
    expected = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert parsed[:3] == [expected, expected, expected]
    assert parsed[3] == expected.replace(microsecond=123456)
    assert parsed[4] == expected
    assert parsed[5] is None


def test_unparseable_timestamp_hides_value() -> None:
    expected = f"Line {FIRST_LINE + 1}, stream 'events', field 'value': expected an ISO 8601 date-time string"
    with pytest.raises(RecordTypeError, match=expected) as caught:
        _batch({"type": "string", "format": "date-time"}, ["2024-01-02T03:04:05Z", MARKER])

    assert MARKER not in str(caught.value)


def test_dates_parse_and_reject() -> None:
    table = _batch({"type": "string", "format": "date"}, ["2024-02-29", datetime.date(2024, 3, 1), None])

    assert table.column("value").to_pylist() == [datetime.date(2024, 2, 29), datetime.date(2024, 3, 1), None]
    with pytest.raises(RecordTypeError, match="expected an ISO 8601 date string"):
        _batch({"type": "string", "format": "date"}, ["2024-02-30"])


def test_objects_become_json_text() -> None:
    table = _batch({"type": ["null", "object"]}, [{"b": Decimal("1.50"), "a": [1, "x"]}, None])

    assert table.column("value").to_pylist() == ['{"b":1.50,"a":[1,"x"]}', None]


def test_objects_reject_scalars() -> None:
    with pytest.raises(RecordTypeError, match="expected a JSON object, found str"):
        _batch({"type": "object"}, [MARKER])


def test_untyped_property_accepts_any_json() -> None:
    table = _batch({}, [1, "text", [True]])

    assert table.column("value").to_pylist() == ["1", '"text"', "[true]"]


def test_lone_surrogates_replaced() -> None:
    assert replace_lone_surrogates("a\ud800b\U0001f600") == "a\ufffdb\U0001f600"
    table = _batch({"type": "string"}, ["x\udfff"])

    assert table.column("value").to_pylist() == ["x\ufffd"]


def test_loaded_at_column_added() -> None:
    table = _batch({"type": "string"}, ["a", "b"])

    assert table.column("_loaded_at").to_pylist() == [LOADED_AT, LOADED_AT]


def test_duplicate_keys_detected_over_all_key_columns() -> None:
    layout = layout_from_schema(
        "insights",
        {"properties": {"ad_id": {"type": "string"}, "country": {"type": "string"}}},
        ("ad_id", "country"),
    )
    distinct = _build(layout, [{"ad_id": "1", "country": "DE"}, {"ad_id": "1", "country": "FR"}])
    repeated = _build(layout, [{"ad_id": "1", "country": "DE"}, {"ad_id": "2", "country": "DE"}, {"ad_id": "1", "country": "DE"}])

    reject_duplicate_keys(layout, distinct, _lines(2))
    expected = (
        rf"Stream 'insights': lines {FIRST_LINE} and {FIRST_LINE + 2} carry the same primary key over the key "
        r"columns \['ad_id', 'country'\]; 1 key value\(s\) occur more than once"
    )
    with pytest.raises(DuplicateKeyError, match=expected):
        reject_duplicate_keys(layout, repeated, _lines(3))


def _decoded_batch(properties: dict, records: list[dict]) -> pa.RecordBatch:
    """Decode RECORD lines the way the target does and build the batch from the decoder's output."""
    layout = layout_from_schema("events", {"properties": properties}, ())
    lines = [msgspec.json.encode({"type": "RECORD", "stream": "events", "record": record}) for record in records]
    decoded = BatchDecoder(layout).decode(lines, _lines(len(lines)))
    assert decoded.typed, "the lines should take the fast path"
    return build_records(layout, decoded.columns, _lines(len(lines)), typed=decoded.typed)


def test_fast_decoder_values_load_typed() -> None:
    properties = {
        "count": {"type": ["integer", "null"]},
        "ratio": {"type": ["number", "null"]},
        "active": {"type": ["boolean", "null"]},
        "day": {"type": ["string", "null"], "format": "date"},
        "at": {"type": ["string", "null"], "format": "date-time"},
    }
    records = [
        {"count": 2**63 - 1, "ratio": 2, "active": True, "day": "2024-05-01", "at": "2024-05-01T12:00:00Z"},
        {"count": None, "ratio": None, "active": None, "day": None, "at": "2024-05-01T14:00:00+02:00"},
    ]

    batch = _decoded_batch(properties, records)

    assert batch.column("count").to_pylist() == [2**63 - 1, None]
    assert batch.column("ratio").to_pylist() == [2.0, None]
    assert batch.column("active").to_pylist() == [True, None]
    assert batch.column("day").to_pylist() == [datetime.date(2024, 5, 1), None]
    assert batch.column("at").to_pylist() == [LOADED_AT, LOADED_AT]


def test_fast_decoder_int64_overflow_names_line() -> None:
    with pytest.raises(RecordTypeError, match=f"Line {FIRST_LINE + 1}, stream 'events', field 'count': the integer does not fit"):
        _decoded_batch({"count": {"type": "integer"}}, [{"count": 1}, {"count": 2**63}])


def test_fast_decoder_parses_odd_date_times() -> None:
    # Arrow's cast rejects a date-time without seconds; Python's parser reads it as UTC.
    batch = _decoded_batch({"at": {"type": "string", "format": "date-time"}}, [{"at": "2024-05-01T12:00"}])

    assert batch.column("at").to_pylist() == [LOADED_AT]
