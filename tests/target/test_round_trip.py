"""Round trips of every JSON type from SCHEMA and RECORD messages into DuckDB and Parquet and back.

Hypothesis draws a stream schema and records whose values match it, runs the real
target in a fresh home and reads every value back from both stores. The expected
value of each cell comes from the RECORD line as the standard `json` module
decodes it, plus the storage rules of the target: lone UTF-16 surrogates become
U+FFFD, date-times are stored in UTC, objects and arrays are stored as JSON text.
The type table below is written out here, not imported from the target, so that
the tests check the target against the contract rather than against itself.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import math
import re
import secrets
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import simplejson
from hypothesis import given, settings
from hypothesis import strategies as st
from singer_sdk.testing.runners import TargetTestRunner

from privacy.keys import load_tenant_keys
from targets.warehouse import TargetWarehouse
from targets.warehouse.parquet_store import read_parquet_file
from .support import (
    TENANT,
    query,
    record_message,
    run_target,
    run_target_expecting_error,
    schema_message,
    singer_text,
    target_config,
    tenant_folder,
)

STREAM = "items"
TABLE = f"stripe.{STREAM}"
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
BIG_INTEGER_LIMIT = 10**30
MAX_DECIMAL_DIGITS = 38
TIMESTAMP_DUCKDB = "TIMESTAMP WITH TIME ZONE"
TIMESTAMP_ARROW = pa.timestamp("us", tz="UTC")
UTC = datetime.UTC


# Column kinds of the contract: JSON Schema, storage types and value strategy.


@dataclass(frozen=True)
class Kind:
    """One kind of declared property, with the types the contract stores it as."""

    name: str
    schema: dict[str, Any]
    duckdb: str
    arrow: pa.DataType
    storage: str  # how a value is stored: text, timestamp, date, integer, decimal, float, boolean or json
    values: st.SearchStrategy[Any]


SPECIAL_PIECES = [
    "\x00",  # NUL
    "\U0001f600",  # emoji
    "\U00010348",  # astral letter (Gothic)
    "\U0001f468\u200d\U0001f469",  # emoji joined by a zero-width joiner
    "\u05d0",  # Hebrew, right to left
    "\u0627",  # Arabic, right to left
    "\u202e",  # right-to-left override
    "e\u0301",  # combining acute accent
    "\ufeff",  # byte order mark
    "\ud800",  # lone high surrogate
    "\udbff",
    "\udc00",  # lone low surrogate
    "\udfff",
]
SPECIAL_TEXTS = ["", "\x00", "nul\x00inside", "\ud800", "a\udfffb", "\ud83d", "\U0001f600\ud800", "\u202eabc"]

# Surrogates (category Cs) are included on purpose.
text_pieces = st.one_of(st.characters(exclude_categories=()), st.sampled_from(SPECIAL_PIECES))
texts = st.one_of(st.sampled_from(SPECIAL_TEXTS), st.lists(text_pieces, max_size=16).map("".join))
key_texts = st.text(st.characters(exclude_categories=("Cs",)) | st.sampled_from(["\x00", "\U0001f600", "\u05d0"]), max_size=12)

OFFSETS = [
    None,  # no offset: UTC by Singer convention
    datetime.timezone.utc,
    datetime.timezone(datetime.timedelta(hours=5, minutes=30)),
    datetime.timezone(datetime.timedelta(hours=-8)),
    datetime.timezone(datetime.timedelta(hours=14)),
    datetime.timezone(datetime.timedelta(hours=-12)),
]


def date_time_text(moment: datetime.datetime, offset: datetime.tzinfo | None, zulu: bool) -> str:
    text = moment.replace(tzinfo=offset).isoformat()
    return text.removesuffix("+00:00") + "Z" if zulu and text.endswith("+00:00") else text


# One day of margin on each side keeps every date-time inside years 1 to 9999 once moved to UTC.
date_times = st.builds(
    date_time_text,
    st.datetimes(min_value=datetime.datetime(1, 1, 2), max_value=datetime.datetime(9999, 12, 30, 23, 59, 59, 999999)),
    st.sampled_from(OFFSETS),
    st.booleans(),
)
dates = st.one_of(
    st.sampled_from([datetime.date.min, datetime.date.max, datetime.date(1970, 1, 1), datetime.date(2024, 2, 29)]),
    st.dates(),
).map(datetime.date.isoformat)
int64_values = st.one_of(st.sampled_from([INT64_MIN, INT64_MAX, 0, -1]), st.integers(INT64_MIN, INT64_MAX))
big_integers = st.one_of(
    st.sampled_from([-BIG_INTEGER_LIMIT, BIG_INTEGER_LIMIT, INT64_MAX + 1, INT64_MIN - 1]),
    st.integers(-BIG_INTEGER_LIMIT, BIG_INTEGER_LIMIT),
)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
numbers = st.one_of(
    st.sampled_from([-0.0, 0.1, 5e-324, 2.2250738585072014e-308, 1e-300, 1e300, 1.7976931348623157e308, -1.7976931348623157e308]),
    finite_floats,
    st.integers(-(2**53), 2**53),
)


def decimals(scale: int) -> st.SearchStrategy[Decimal | int]:
    """Values with at most `scale` decimals that fit DECIMAL(38, scale), as exact decimals or integers."""
    largest = 10**MAX_DECIMAL_DIGITS - 1
    unscaled = st.one_of(st.sampled_from([0, 1, -1, 5, largest, -largest]), st.integers(-(10**6), 10**6), st.integers(-largest, largest))
    whole = 10 ** (MAX_DECIMAL_DIGITS - scale) - 1
    # Built from text, because Decimal arithmetic would round to the context's 28 digits.
    return st.one_of(unscaled.map(lambda digits: Decimal(f"{digits}E-{scale}")), st.integers(-whole, whole))


def replace_surrogates(text: str) -> str:
    """Replace each UTF-16 surrogate code point of an already decoded string with U+FFFD."""
    return "".join("\ufffd" if 0xD800 <= ord(character) <= 0xDFFF else character for character in text)


def decoded_key(key: str) -> str:
    """Return the object key a reader of the stored JSON text sees for `key`."""
    return replace_surrogates(json.loads(json.dumps(key)))


def without_colliding_keys(mapping: dict[str, Any]) -> dict[str, Any]:
    """Drop keys that would read back equal to an earlier key (two lone surrogates both become U+FFFD)."""
    kept: dict[str, Any] = {}
    seen: set[str] = set()
    for key, value in mapping.items():
        if decoded_key(key) not in seen:
            seen.add(decoded_key(key))
            kept[key] = value
    return kept


def json_objects(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(texts, values, max_size=4).map(without_colliding_keys)


present_json_scalars = st.one_of(st.booleans(), int64_values, finite_floats, texts)
json_scalars = st.one_of(st.none(), present_json_scalars)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), json_objects(children)),
    max_leaves=12,
)
free_objects = st.one_of(st.just({}), json_objects(json_values))
# Any JSON value but null at the top; a nullable column adds null itself.
present_json_values = st.one_of(present_json_scalars, st.lists(json_values, max_size=4), free_objects)

OBJECT_PROPERTIES = {
    "name": {"type": ["null", "string"]},
    "count": {"type": ["null", "integer"]},
    "ratio": {"type": ["null", "number"]},
    "flags": {"type": ["null", "array"], "items": {"type": "boolean"}},
    "grid": {"type": ["null", "array"], "items": {"type": "array", "items": {"type": "integer"}}},
    "extra": {"type": ["null", "object"]},
}
shaped_objects = st.fixed_dictionaries(
    {},
    optional={
        "name": st.none() | texts,
        "count": st.none() | int64_values,
        "ratio": st.none() | finite_floats,
        "flags": st.none() | st.lists(st.booleans(), max_size=4),
        "grid": st.none() | st.lists(st.lists(int64_values, max_size=3), max_size=3),
        "extra": st.none() | free_objects,
    },
)
SCALAR_ITEMS = {"type": ["null", "string", "integer", "number", "boolean"]}


def decimal_kind(scale: int) -> Kind:
    step: int | float = 1 if scale == 0 else float(f"1e-{scale}")
    return Kind(
        f"decimal{scale}",
        {"type": "number", "multipleOf": step},
        f"DECIMAL(38,{scale})",
        pa.decimal128(38, scale),
        "decimal",
        decimals(scale),
    )


KINDS = [
    Kind("text", {"type": "string"}, "VARCHAR", pa.string(), "text", texts),
    Kind("moment", {"type": "string", "format": "date-time"}, TIMESTAMP_DUCKDB, TIMESTAMP_ARROW, "timestamp", date_times),
    Kind("day", {"type": "string", "format": "date"}, "DATE", pa.date32(), "date", dates),
    Kind("whole", {"type": "integer"}, "BIGINT", pa.int64(), "integer", int64_values),
    Kind("big", {"type": "integer", "maximum": BIG_INTEGER_LIMIT}, "DECIMAL(38,0)", pa.decimal128(38, 0), "decimal", big_integers),
    Kind("real", {"type": "number"}, "DOUBLE", pa.float64(), "float", numbers),
    *(decimal_kind(scale) for scale in range(7)),
    Kind("flag", {"type": "boolean"}, "BOOLEAN", pa.bool_(), "boolean", st.booleans()),
    Kind("free", {"type": "object"}, "VARCHAR", pa.string(), "json", free_objects),
    Kind("shaped", {"type": "object", "properties": OBJECT_PROPERTIES}, "VARCHAR", pa.string(), "json", shaped_objects),
    Kind("scalars", {"type": "array", "items": SCALAR_ITEMS}, "VARCHAR", pa.string(), "json", st.lists(json_scalars, max_size=5)),
    Kind(
        "objects",
        {"type": "array", "items": {"type": "object", "properties": OBJECT_PROPERTIES}},
        "VARCHAR",
        pa.string(),
        "json",
        st.lists(shaped_objects, max_size=3),
    ),
    Kind("untyped", {}, "VARCHAR", pa.string(), "json", present_json_values),
]
KINDS_BY_NAME = {kind.name: kind for kind in KINDS}


@dataclass(frozen=True)
class ColumnSpec:
    """One drawn property: its kind, whether it may be null, and whether every row gets an empty object."""

    name: str
    kind_name: str  # a key of KINDS_BY_NAME; a name keeps Hypothesis's report of a failing case short
    nullable: bool
    empty_in_every_row: bool = False

    @property
    def kind(self) -> Kind:
        return KINDS_BY_NAME[self.kind_name]

    def property_schema(self) -> dict[str, Any]:
        schema = dict(self.kind.schema)
        if self.nullable and "type" in schema:
            schema["type"] = ["null", schema["type"]]
        return schema


@dataclass
class StreamCase:
    """A drawn stream: its columns, its records, the batch size of the run and the JSON layout of its lines."""

    columns: list[ColumnSpec]
    records: list[dict[str, Any]]
    batch_size_rows: int
    compact: bool = True
    schema: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        properties = {"id": {"type": "string"}} | {column.name: column.property_schema() for column in self.columns}
        required = [column.name for column in self.columns if not column.nullable]
        self.schema = schema_message(STREAM, properties, ("id",), required=required)


@st.composite
def stream_cases(draw: st.DrawFn) -> StreamCase:
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=8))
    columns = [
        ColumnSpec(
            f"{kind.name}_{position}",
            kind.name,
            nullable=draw(st.booleans()),
            empty_in_every_row=kind.name in ("free", "shaped") and draw(st.booleans()),
        )
        for position, kind in enumerate(kinds)
    ]
    ids = draw(st.lists(key_texts, min_size=1, max_size=40, unique=True))
    records = [{"id": key} | {column.name: draw(cell_values(column)) for column in columns} for key in ids]
    batch_size_rows = draw(st.one_of(st.just(50_000), st.integers(1, 40)))
    return StreamCase(columns, records, batch_size_rows, compact=draw(st.booleans()))


def cell_values(column: ColumnSpec) -> st.SearchStrategy[Any]:
    if column.empty_in_every_row:
        return st.just({})
    return st.one_of(st.none(), column.kind.values) if column.nullable else column.kind.values


# Running the target on exact JSON text.


def record_lines(records: list[dict[str, Any]], compact: bool) -> list[str]:
    """Encode RECORD messages; decimals become JSON numbers with all their digits, lone surrogates `\\udXXX` escapes.

    mapper-pii writes compact JSON (`{"type":"RECORD",...`); other writers put spaces after separators.
    """
    separators = (",", ":") if compact else (", ", ": ")
    return [simplejson.dumps(record_message(STREAM, record), use_decimal=True, separators=separators) for record in records]


def run_case(home: Path, case: StreamCase) -> list[str]:
    """Run the target on the case's SCHEMA and RECORD lines; return the RECORD lines."""
    lines = record_lines(case.records, case.compact)
    text = singer_text([case.schema], home) + "".join(line + "\n" for line in lines)
    runner = TargetTestRunner(
        TargetWarehouse,
        config=target_config(home, batch_size_rows=case.batch_size_rows),
        input_io=io.StringIO(text),
    )
    runner.sync_all()
    return lines


# Expected values, from the RECORD lines as `json` decodes them.


def expected_rows(case: StreamCase, lines: list[str]) -> dict[str, dict[str, Any]]:
    """Map each stored id to the values its row must hold."""
    rows = {}
    for line in lines:
        exact = json.loads(line, parse_float=Decimal)["record"]
        plain = json.loads(line)["record"]
        row = {column.name: expected_value(column.kind.storage, exact.get(column.name), plain.get(column.name)) for column in case.columns}
        rows[replace_surrogates(plain["id"])] = row
    return rows


def expected_value(storage: str, exact: Any, plain: Any) -> Any:
    if plain is None:
        return None
    converters: dict[str, Callable[[], Any]] = {
        "text": lambda: replace_surrogates(plain),
        "timestamp": lambda: as_utc(datetime.datetime.fromisoformat(plain)),
        "date": lambda: datetime.date.fromisoformat(plain),
        "integer": lambda: plain,
        "decimal": lambda: Decimal(exact),
        "float": lambda: float(plain),
        "boolean": lambda: plain,
        "json": lambda: replace_surrogates_deep(plain),
    }
    return converters[storage]()


def as_utc(moment: datetime.datetime) -> datetime.datetime:
    # A date-time without an offset is UTC by Singer convention.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def replace_surrogates_deep(value: Any) -> Any:
    if isinstance(value, str):
        return replace_surrogates(value)
    if isinstance(value, list):
        return [replace_surrogates_deep(item) for item in value]
    if isinstance(value, dict):
        return {replace_surrogates(key): replace_surrogates_deep(item) for key, item in value.items()}
    return value


# Comparing stored values with expected ones.


def json_equal(first: Any, second: Any) -> bool:
    """Compare decoded JSON values: numbers by value, but booleans never equal numbers."""
    if isinstance(first, bool) or isinstance(second, bool):
        return type(first) is type(second) and first == second
    if isinstance(first, int | float) and isinstance(second, int | float):
        return first == second
    if isinstance(first, list) and isinstance(second, list):
        return len(first) == len(second) and all(json_equal(a, b) for a, b in zip(first, second, strict=True))
    if isinstance(first, dict) and isinstance(second, dict):
        return first.keys() == second.keys() and all(json_equal(first[key], second[key]) for key in first)
    return type(first) is type(second) and first == second


def assert_cell(storage: str, actual: Any, expected: Any, place: str, keeps_zero_sign: bool) -> None:
    """Assert one stored cell equals its expected value; `place` names the store, row and column."""
    if expected is None:
        assert actual is None, f"{place}: expected NULL"
        return

    assert actual is not None, f"{place}: expected a value, found NULL"
    if storage == "json":
        assert isinstance(actual, str), f"{place}: JSON must be stored as text"
        assert json_equal(json.loads(actual), expected), f"{place}: {actual!r} != {expected!r}"
    elif storage == "float":
        assert actual == expected, f"{place}: {actual!r} != {expected!r}"
        if keeps_zero_sign:
            assert math.copysign(1.0, actual) == math.copysign(1.0, expected), f"{place}: the sign of zero was lost"
    elif storage == "decimal":
        assert isinstance(actual, Decimal), f"{place}: expected a Decimal, found {type(actual).__name__}"
        assert actual == expected, f"{place}: {actual!r} != {expected!r}"
    else:
        assert type(actual) is type(expected), f"{place}: expected {type(expected).__name__}, found {type(actual).__name__}"
        assert actual == expected, f"{place}: {actual!r} != {expected!r}"


def assert_rows(store: str, case: StreamCase, actual_rows: list[dict[str, Any]], expected: dict[str, dict[str, Any]]) -> None:
    # NOTE: DuckDB 1.5.5 can flip the sign of a zero at a checkpoint when a DOUBLE column holds both 0.0 and -0.0
    # (its compression compares floats with ==), so DuckDB doubles are compared by value alone.
    keeps_zero_sign = store != "DuckDB"
    ids = [row["id"] for row in actual_rows]
    assert len(ids) == len(set(ids)), f"{store}: an id is stored twice"
    assert set(ids) == set(expected), f"{store}: stored ids differ from the records' ids"

    for row in actual_rows:
        for column in case.columns:
            place = f"{store}, id {row['id']!r}, column {column.name}"
            assert_cell(column.kind.storage, row[column.name], expected[row["id"]][column.name], place, keeps_zero_sign)


def expected_duckdb_types(case: StreamCase) -> dict[str, str]:
    columns = {"id": "VARCHAR"} | {column.name: column.kind.duckdb for column in case.columns}
    return columns | {"_loaded_at": TIMESTAMP_DUCKDB}


def expected_arrow_types(case: StreamCase) -> dict[str, pa.DataType]:
    columns = {"id": pa.string()} | {column.name: column.kind.arrow for column in case.columns}
    return columns | {"_loaded_at": TIMESTAMP_ARROW}


def duckdb_types(home: Path) -> dict[str, str]:
    rows = query(
        home,
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = 'wh' AND schema_name = 'stripe' AND table_name = ?",
        [STREAM],
    )
    return dict(rows)


def duckdb_rows(home: Path, case: StreamCase) -> list[dict[str, Any]]:
    names = ["id", *(column.name for column in case.columns)]
    selected = ", ".join(f'"{name}"' for name in names)
    return [dict(zip(names, row, strict=True)) for row in query(home, f"SELECT {selected} FROM {TABLE}")]


def parquet_tables(home: Path) -> list[pa.Table]:
    keys = load_tenant_keys(home, TENANT, create=False)
    paths = sorted((tenant_folder(home) / "parquet" / "stripe" / STREAM).glob("*.parquet"))
    return [read_parquet_file(path, keys) for path in paths]


def assert_round_trip(home: Path, case: StreamCase, lines: list[str]) -> None:
    expected = expected_rows(case, lines)

    assert duckdb_types(home) == expected_duckdb_types(case)
    assert_rows("DuckDB", case, duckdb_rows(home, case), expected)

    tables = parquet_tables(home)
    assert tables, "the run wrote no Parquet file"
    for table in tables:
        arrow_types = {schema_field.name: schema_field.type for schema_field in table.schema}
        assert arrow_types == expected_arrow_types(case)
    parquet_rows = [row for table in tables for row in table.to_pylist()]
    assert_rows("Parquet", case, parquet_rows, expected)


# Property-based round trip.


@pytest.fixture(scope="module")
def master_key_in_environment() -> Iterator[None]:
    """One random master key for every Hypothesis example (a function fixture is not reset between examples)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPENDLAKE_MASTER_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
        patch.delenv("SPENDLAKE_ALLOW_LOCAL_MASTER_KEY", raising=False)
        patch.delenv("SPENDLAKE_HOME", raising=False)
        yield


@settings(max_examples=30, deadline=None)
@given(case=stream_cases())
def test_every_type_round_trips(
    case: StreamCase,
    tmp_path_factory: pytest.TempPathFactory,
    master_key_in_environment: None,
) -> None:
    home = tmp_path_factory.mktemp("round-trip") / "home"

    lines = run_case(home, case)

    assert_round_trip(home, case, lines)


# Edge cases, one run each.


def single_column_case(kind_name: str, values: list[Any], nullable: bool = True) -> StreamCase:
    column = ColumnSpec("value", kind_name, nullable)
    records = [{"id": f"r{position}", "value": value} for position, value in enumerate(values)]
    return StreamCase([column], records, batch_size_rows=50_000)


def stored_ids(home: Path) -> list[tuple[str]]:
    return query(home, f"SELECT id FROM {TABLE} ORDER BY id")


def parquet_file_count(home: Path) -> int:
    return len(list((tenant_folder(home) / "parquet" / "stripe" / STREAM).glob("*.parquet")))


@pytest.mark.parametrize("value", [INT64_MAX + 1, INT64_MIN - 1, BIG_INTEGER_LIMIT])
def test_integer_beyond_int64_rejected(home: Path, value: int) -> None:
    schema = single_column_case("whole", []).schema
    run_target(home, [schema, record_message(STREAM, {"id": "a", "value": 1})])

    error = run_target_expecting_error(
        home,
        [schema, record_message(STREAM, {"id": "b", "value": 2}), record_message(STREAM, {"id": "c", "value": value})],
    )

    message = str(error)
    assert f"'{STREAM}'" in message
    assert "field 'value'" in message
    assert re.search(r"\bline 3\b", message, re.IGNORECASE), message
    assert str(value) not in "".join(traceback.format_exception(error))
    assert stored_ids(home) == [("a",)]
    assert parquet_file_count(home) == 1


@pytest.mark.parametrize(
    ("kind_name", "stored", "rejected"),
    [
        ("decimal2", 1.25, 1.005),
        ("decimal0", 7, 2.5),
        ("decimal6", 0.000001, 0.0000001),
    ],
)
def test_decimal_with_extra_decimals_rejected(home: Path, kind_name: str, stored: float, rejected: float) -> None:
    schema = single_column_case(kind_name, []).schema
    run_target(home, [schema, record_message(STREAM, {"id": "a", "value": stored})])

    error = run_target_expecting_error(
        home,
        [schema, record_message(STREAM, {"id": "b", "value": stored}), record_message(STREAM, {"id": "c", "value": rejected})],
    )

    message = str(error)
    assert f"'{STREAM}'" in message
    assert "field 'value'" in message
    assert re.search(r"\bline 3\b", message, re.IGNORECASE), message
    assert json.dumps(rejected) not in "".join(traceback.format_exception(error))
    assert query(home, f"SELECT id, value FROM {TABLE}") == [("a", Decimal(json.dumps(stored)))]
    assert parquet_file_count(home) == 1


def test_empty_object_in_every_row_loads(home: Path) -> None:
    columns = [
        ColumnSpec("free_0", "free", nullable=False),
        ColumnSpec("shaped_1", "shaped", nullable=True),
        ColumnSpec("scalars_2", "scalars", nullable=False),
        ColumnSpec("untyped_3", "untyped", nullable=True),
    ]
    records = [
        {"id": f"r{position}", "free_0": {}, "shaped_1": {}, "scalars_2": [], "untyped_3": {}} for position in range(5)
    ]
    case = StreamCase(columns, records, batch_size_rows=50_000)

    lines = run_case(home, case)

    assert query(home, f"SELECT DISTINCT free_0, shaped_1, scalars_2, untyped_3 FROM {TABLE}") == [("{}", "{}", "[]", "{}")]
    assert_round_trip(home, case, lines)


def test_column_null_in_every_row_loads(home: Path) -> None:
    columns = [ColumnSpec(f"{kind.name}_{position}", kind.name, nullable=True) for position, kind in enumerate(KINDS)]
    # Half the records send null, half leave the field out.
    records = [
        {"id": f"r{position}"} | ({column.name: None for column in columns} if position % 2 else {})
        for position in range(6)
    ]
    case = StreamCase(columns, records, batch_size_rows=50_000)

    lines = run_case(home, case)

    counts = query(home, f"SELECT count(*), {', '.join(f'count({column.name})' for column in columns)} FROM {TABLE}")
    assert counts == [(6, *([0] * len(columns)))]
    assert_round_trip(home, case, lines)
