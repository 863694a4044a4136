"""JSON Schema to column mapping shared by the Parquet and DuckDB writers."""

from __future__ import annotations

import pyarrow as pa
import pytest

from targets.warehouse.arrow_schema import layout_from_schema
from targets.warehouse.errors import WarehouseSchemaError


def _layout(properties: dict, key_properties: tuple[str, ...] = (), required: tuple[str, ...] = ()):
    schema = {"type": "object", "properties": properties, "required": list(required)}
    return layout_from_schema("events", schema, key_properties)


@pytest.mark.parametrize(
    ("prop", "arrow_type", "duckdb_type"),
    [
        ({"type": "string"}, pa.string(), "VARCHAR"),
        ({"type": ["null", "string"], "format": "date-time"}, pa.timestamp("us", tz="UTC"), "TIMESTAMP WITH TIME ZONE"),
        ({"type": "string", "format": "date"}, pa.date32(), "DATE"),
        ({"type": "string", "format": "email"}, pa.string(), "VARCHAR"),
        ({"type": "integer"}, pa.int64(), "BIGINT"),
        ({"type": ["integer", "null"]}, pa.int64(), "BIGINT"),
        ({"type": "number"}, pa.float64(), "DOUBLE"),
        ({"type": ["integer", "number"]}, pa.float64(), "DOUBLE"),
        ({"type": "boolean"}, pa.bool_(), "BOOLEAN"),
        ({"type": "object", "properties": {"a": {"type": "string"}}}, pa.string(), "VARCHAR"),
        ({"type": ["null", "array"], "items": {"type": "string"}}, pa.string(), "VARCHAR"),
        ({"properties": {"a": {"type": "integer"}}}, pa.string(), "VARCHAR"),
        ({}, pa.string(), "VARCHAR"),
        (
            {"anyOf": [{"type": "string", "format": "date-time"}, {"type": ["string", "null"]}]},
            pa.timestamp("us", tz="UTC"),
            "TIMESTAMP WITH TIME ZONE",
        ),
    ],
)
def test_property_maps_to_one_type(prop: dict, arrow_type: pa.DataType, duckdb_type: str) -> None:
    column = _layout({"value": prop}).columns[0]

    assert column.type.arrow == arrow_type
    assert column.type.duckdb == duckdb_type


def test_json_columns_record_accepted_shapes() -> None:
    layout = _layout({"obj": {"type": "object"}, "arr": {"type": "array"}, "any": {}})

    assert [column.json_shapes for column in layout.columns] == [("object",), ("array",), ()]


def test_nullability_follows_type_required_and_key() -> None:
    layout = _layout(
        {
            "id": {"type": ["null", "integer"]},
            "must": {"type": "string"},
            "may_be_null": {"type": ["null", "string"]},
            "optional": {"type": "string"},
        },
        key_properties=("id",),
        required=("must", "may_be_null"),
    )

    assert {column.name: column.nullable for column in layout.columns} == {
        "id": False,
        "must": False,
        "may_be_null": True,
        "optional": True,
    }
    assert layout.arrow_schema.field("must").nullable is False
    assert layout.arrow_schema.names[-1] == "_loaded_at"


def test_personal_columns_marked_pii() -> None:
    layout = _layout(
        {
            "email": {"type": "string", "x-pii": "email", "x-pii-applied": "hmac"},
            "phone": {"type": "string", "x-pii": "phone", "x-pii-applied": "encrypt"},
            "ip": {"type": "string", "x-pii": "ip", "x-pii-applied": "truncate_ip"},
            "campaign": {"type": "string", "x-pii": "none"},
            "plain": {"type": "string"},
        }
    )

    assert layout.pii_columns == ["email", "phone", "ip"]


def test_union_of_scalar_types_rejected() -> None:
    expected = r"Stream 'events', field 'value': the type union \['integer', 'string'\]"
    with pytest.raises(WarehouseSchemaError, match=expected):
        _layout({"value": {"type": ["string", "integer"]}})


def test_names_differing_in_case_rejected() -> None:
    with pytest.raises(WarehouseSchemaError, match="properties 'Id' and 'id' differ only in case"):
        _layout({"Id": {"type": "string"}, "id": {"type": "string"}})


def test_reserved_load_time_name_rejected() -> None:
    with pytest.raises(WarehouseSchemaError, match="'_loaded_at' is reserved"):
        _layout({"_loaded_at": {"type": "string"}})


def test_undeclared_key_property_rejected() -> None:
    with pytest.raises(WarehouseSchemaError, match=r"key properties \['order_id'\] are not declared"):
        _layout({"id": {"type": "string"}}, key_properties=("order_id",))


def test_schema_without_properties_rejected() -> None:
    with pytest.raises(WarehouseSchemaError, match="has no 'properties' object"):
        layout_from_schema("events", {"type": "object"}, None)
