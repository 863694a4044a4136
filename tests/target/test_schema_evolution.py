"""A later SCHEMA adds columns, widens types or keeps a wider stored type; an incompatible change stops the load.

Each test loads a first run, then a second run with a changed SCHEMA, and
checks the DuckDB column type, the stored values of both runs, and the
deduplicated Parquet view, which must agree with DuckDB across files written
under both schemas.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from privacy.keys import load_tenant_keys
from targets.warehouse.errors import RecordTypeError, WarehouseSchemaError
from targets.warehouse.lake import LocalLake
from targets.warehouse.lake_reader import read_stream

from .support import (
    SOURCE,
    TENANT,
    query,
    record_message,
    run_target,
    run_target_expecting_error,
    schema_message,
    tenant_folder,
)

UTC = datetime.UTC


def _load(home: Path, value_schema: dict[str, Any], values: list[Any], first_id: int) -> None:
    properties = {"id": {"type": "integer"}, "value": value_schema}
    records = [record_message("events", {"id": first_id + index, "value": value}) for index, value in enumerate(values)]
    run_target(home, [schema_message("events", properties), *records])


def _column_type(home: Path) -> str:
    rows = query(home, "SELECT data_type FROM duckdb_columns() WHERE table_name = 'events' AND column_name = 'value'")
    return rows[0][0]


def _lake_values(home: Path) -> list[Any]:
    keys = load_tenant_keys(home, TENANT, create=False)
    table = read_stream(LocalLake(tenant_folder(home)), keys, SOURCE, "events")
    return table.column("value").to_pylist()


@pytest.mark.parametrize(
    ("before", "before_values", "after", "after_values", "stored_type", "expected"),
    [
        pytest.param(
            {"type": "integer"}, [1, 2**53 + 1], {"type": "number"}, [2.5], "DOUBLE", [1.0, float(2**53 + 1), 2.5],
            id="integer to number",
        ),
        pytest.param(
            {"type": "integer"}, [7, -(2**63)], {"type": "number", "multipleOf": 0.01}, [Decimal("1.25")],
            "DECIMAL(38,2)", [Decimal("7.00"), Decimal(-(2**63)), Decimal("1.25")],
            id="integer to decimal",
        ),
        pytest.param(
            {"type": "number", "multipleOf": 0.01}, [Decimal("1.25")], {"type": "number", "multipleOf": 0.0001},
            [Decimal("0.1234")], "DECIMAL(38,4)", [Decimal("1.2500"), Decimal("0.1234")],
            id="more decimals",
        ),
        pytest.param(
            {"type": "string", "format": "date"}, ["2024-03-01"], {"type": "string", "format": "date-time"},
            ["2024-03-02T10:30:00+02:00"], "TIMESTAMP WITH TIME ZONE",
            [datetime.datetime(2024, 3, 1, tzinfo=UTC), datetime.datetime(2024, 3, 2, 8, 30, tzinfo=UTC)],
            id="date to timestamp",
        ),
        pytest.param(
            {"type": "integer"}, [42], {"type": "string"}, ["forty-three"], "VARCHAR", ["42", "forty-three"],
            id="integer to string",
        ),
    ],
)
def test_widening_change_widens_column(
    home: Path,
    before: dict,
    before_values: list,
    after: dict,
    after_values: list,
    stored_type: str,
    expected: list,
) -> None:
    _load(home, before, before_values, first_id=1)

    _load(home, after, after_values, first_id=len(before_values) + 1)

    assert _column_type(home) == stored_type
    assert [row[0] for row in query(home, "SELECT value FROM stripe.events ORDER BY id")] == expected
    assert _lake_values(home) == expected


def test_narrower_declared_type_keeps_stored_column(home: Path) -> None:
    _load(home, {"type": "number"}, [1.5], first_id=1)

    _load(home, {"type": "integer"}, [2], first_id=2)

    assert _column_type(home) == "DOUBLE"
    assert query(home, "SELECT id, value FROM stripe.events ORDER BY id") == [(1, 1.5), (2, 2.0)]
    assert _lake_values(home) == [1.5, 2.0]


def test_new_field_adds_nullable_column(home: Path) -> None:
    _load(home, {"type": "integer"}, [1], first_id=1)
    properties = {"id": {"type": "integer"}, "value": {"type": "integer"}, "channel": {"type": "string"}}

    run_target(home, [schema_message("events", properties, required=("channel",)), record_message("events", {"id": 2, "value": 2, "channel": "web"})])

    assert query(home, "SELECT id, value, channel FROM stripe.events ORDER BY id") == [(1, 1, None), (2, 2, "web")]
    keys = load_tenant_keys(home, TENANT, create=False)
    table = read_stream(LocalLake(tenant_folder(home)), keys, SOURCE, "events")
    assert table.select(["id", "value", "channel"]).to_pylist() == [
        {"id": 1, "value": 1, "channel": None},
        {"id": 2, "value": 2, "channel": "web"},
    ]


@pytest.mark.parametrize(
    ("before", "after", "declared", "stored"),
    [
        ({"type": "integer"}, {"type": "boolean"}, "boolean (BOOLEAN)", "BIGINT"),
        ({"type": "boolean"}, {"type": "integer"}, "integer (BIGINT)", "BOOLEAN"),
        ({"type": "number"}, {"type": "number", "multipleOf": 0.01}, "number (multipleOf 0.01) (DECIMAL(38,2))", "DOUBLE"),
        ({"type": "string", "format": "date-time"}, {"type": "number"}, "number (DOUBLE)", "TIMESTAMP WITH TIME ZONE"),
    ],
)
def test_incompatible_change_names_stream_column_and_types(home: Path, before: dict, after: dict, declared: str, stored: str) -> None:
    first = {"integer": 1, "boolean": True, "number": 1.5, "string": "2024-03-01T00:00:00Z"}[before["type"]]
    _load(home, before, [first], first_id=1)
    properties = {"id": {"type": "integer"}, "value": after, "added": {"type": ["null", "string"]}}

    error = run_target_expecting_error(home, [schema_message("events", properties)])

    assert isinstance(error, WarehouseSchemaError)
    assert f"Stream 'events', column 'value': the new SCHEMA declares {declared}, but stripe.events stores {stored}" in str(error)
    # Nothing of the change is half-applied: the column keeps its type and no column was added.
    assert _column_type(home) == stored
    columns = [row[0] for row in query(home, "SELECT column_name FROM duckdb_columns() WHERE table_name = 'events'")]
    assert "added" not in columns


def test_key_column_cannot_widen(home: Path) -> None:
    _load(home, {"type": "integer"}, [1], first_id=1)
    properties = {"id": {"type": "number"}, "value": {"type": "integer"}}

    error = run_target_expecting_error(home, [schema_message("events", properties)])

    assert isinstance(error, WarehouseSchemaError)
    assert "column 'id'" in str(error)
    assert "key columns cannot change type" in str(error)


def test_key_column_cannot_take_narrower_type(home: Path) -> None:
    properties = {"id": {"type": "string"}, "value": {"type": "integer"}}
    run_target(home, [schema_message("events", properties), record_message("events", {"id": "7", "value": 1})])
    narrower = {"id": {"type": "integer"}, "value": {"type": "integer"}}

    error = run_target_expecting_error(home, [schema_message("events", narrower), record_message("events", {"id": 7, "value": 2})])

    assert isinstance(error, WarehouseSchemaError)
    assert "column 'id'" in str(error)
    assert query(home, "SELECT id, value FROM stripe.events") == [("7", 1)]


def test_case_only_rename_rejected(home: Path) -> None:
    _load(home, {"type": "integer"}, [1], first_id=1)
    renamed = {"id": {"type": "integer"}, "Value": {"type": "integer"}}

    error = run_target_expecting_error(home, [schema_message("events", renamed)])

    assert isinstance(error, WarehouseSchemaError)
    assert "Stream 'events', column 'Value': stripe.events stores this column as 'value'" in str(error)


def test_value_that_does_not_fit_kept_column_rejected(home: Path) -> None:
    _load(home, {"type": "integer"}, [1], first_id=1)
    _load(home, {"type": "number"}, [1.5], first_id=2)
    marker = 9007199254740993

    error = run_target_expecting_error(
        home,
        [schema_message("events", {"id": {"type": "integer"}, "value": {"type": "integer"}}), record_message("events", {"id": 3, "value": marker})],
    )

    assert isinstance(error, RecordTypeError)
    assert "column(s) ['value'] does not convert exactly to the stored column type" in str(error)
    assert str(marker) not in str(error)
