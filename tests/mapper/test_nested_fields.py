"""mapper-pii on kept objects and arrays of objects: only declared sub-fields pass."""

from __future__ import annotations

import json
import logging
import typing as t

import pytest

from tests.mapper.support import error_text, record, run_mapper

PROPERTIES: dict[str, t.Any] = {
    "id": {"type": "string", "x-pii": "none"},
    "meta": {"type": ["object", "null"], "x-pii": "none", "properties": {"plan": {"type": "string", "x-pii": "none"}}},
    "lines": {
        "type": ["array", "null"],
        "x-pii": "none",
        "items": {
            "type": "object",
            "properties": {
                "sku": {"type": ["string", "null"]},
                "price": {"type": ["number", "null"]},
                "options": {"type": ["object", "null"], "properties": {"size": {"type": "string"}}},
            },
        },
    },
    "extra": {"type": ["object", "null"], "x-pii": "none"},
}


def schema(properties: dict[str, t.Any] = PROPERTIES) -> dict[str, t.Any]:
    return {"type": "SCHEMA", "stream": "accounts", "key_properties": ["id"], "schema": {"type": "object", "properties": properties}}


def test_undeclared_subfield_dropped(caplog: pytest.LogCaptureFixture) -> None:
    values = {"id": "a1", "meta": {"plan": "gold", "email": "LEAKNESTED@example.com"}}

    with caplog.at_level(logging.INFO):
        run = run_mapper([schema(), record("accounts", values)])

    assert run.error is None
    assert run.records("accounts") == [{"id": "a1", "meta": {"plan": "gold"}}]
    assert "LEAKNESTED" not in run.text
    assert "Stream accounts: dropped sub-field value(s) missing from the SCHEMA, per field: meta (1)" in caplog.text
    assert "LEAKNESTED" not in caplog.text


def test_array_items_pruned_recursively() -> None:
    lines = [
        {"sku": "S-1", "price": 1.10000000000000000001, "buyer": "jane@example.com", "options": {"size": "M", "note": "call +1 415 555 0123"}},
        {"sku": "S-2", "price": None},
    ]
    line = json.dumps({"type": "RECORD", "stream": "accounts", "record": {"id": "a1", "lines": lines}}).replace(
        "1.1", "1.10000000000000000001"
    )

    run = run_mapper([schema(), line + "\n"])

    assert run.error is None
    assert run.records("accounts") == [{"id": "a1", "lines": [{"sku": "S-1", "price": 1.1, "options": {"size": "M"}}, {"sku": "S-2", "price": None}]}]
    assert '"price":1.10000000000000000001' in run.text
    assert "jane@example.com" not in run.text
    assert "555 0123" not in run.text


def test_slow_path_record_pruned() -> None:
    # A field missing from the SCHEMA sends the record through the slow path.
    values = {"id": "a1", "surprise": 1, "meta": {"plan": "gold", "email": "LEAKNESTED@example.com"}}

    run = run_mapper([schema(), record("accounts", values)])

    assert run.error is None
    assert run.records("accounts") == [{"id": "a1", "meta": {"plan": "gold"}}]
    assert "LEAKNESTED" not in run.text


def test_scalars_and_null_pass_unchanged() -> None:
    values = {"id": "a1", "meta": None, "lines": None}

    run = run_mapper([schema(), record("accounts", values)])

    assert run.records("accounts") == [values]


def test_free_form_object_kept_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    values = {"id": "a1", "extra": {"anything": "goes"}}

    with caplog.at_level(logging.INFO):
        run = run_mapper([schema(), record("accounts", values), schema(), record("accounts", values)])

    assert run.records("accounts") == [values, values]
    warnings = [r.getMessage() for r in caplog.records if "without declared properties" in r.getMessage()]
    assert warnings == [
        "Stream accounts: kept object field(s) without declared properties pass whole, so sub-fields are not "
        "checked: extra. Declare their properties in the tap to keep only those."
    ]


def test_nested_free_form_path_named(caplog: pytest.LogCaptureFixture) -> None:
    properties = {
        "id": {"type": "string", "x-pii": "none"},
        "lines": {"type": "array", "x-pii": "none", "items": {"type": "object", "properties": {"attributes": {"type": "object"}}}},
    }

    with caplog.at_level(logging.INFO):
        run_mapper([schema(properties)])

    assert "checked: lines[].attributes." in caplog.text


@pytest.mark.parametrize(
    ("values", "found", "declared"),
    [
        ({"id": "a1", "meta": [{"email": "jane@example.com"}]}, "a JSON array", "an object"),
        ({"id": "a1", "lines": {"email": "jane@example.com"}}, "a JSON object", "an array"),
    ],
)
def test_container_kind_mismatch_stops_run(values: dict[str, t.Any], found: str, declared: str) -> None:
    run = run_mapper([schema(), record("accounts", values)])

    text = error_text(run.error)
    assert f"a value of kept field '{next(iter(set(values) - {'id'}))}' (or of one of its sub-fields) is {found}" in text
    assert f"its SCHEMA declares {declared}" in text
    assert "jane@example.com" not in text
    assert run.records() == []
    assert "jane@example.com" not in run.text


def test_subfield_names_msgspec_cannot_use_still_pruned(caplog: pytest.LogCaptureFixture) -> None:
    odd = 'say "hi" \\ \t'
    properties = {"id": {"type": "string", "x-pii": "identifier"}, "meta": {"type": ["object", "null"], "x-pii": "none", "properties": {odd: {"type": "string"}}}}
    values = {"id": "a1", "meta": {odd: "kept", "email": "LEAKODD@example.com"}}

    with caplog.at_level(logging.INFO):
        run = run_mapper([schema(properties), record("accounts", values)])

    assert run.error is None
    assert run.records("accounts") == [{"id": run.records("accounts")[0]["id"], "meta": {odd: "kept"}}]
    assert "LEAKODD" not in run.text
    assert "per field: meta (1)" in caplog.text


def test_odd_subfield_names_on_slow_path() -> None:
    odd = 'a"b'
    properties = {
        "id": {"type": "string", "x-pii": "identifier"},
        "note": {"type": "string", "x-pii": "none"},
        "meta": {"type": ["object", "null"], "x-pii": "none", "properties": {odd: {"type": "string"}}},
    }
    # The escaped lone surrogate makes msgspec reject the line, so the record takes the slow path.
    line = json.dumps({"type": "RECORD", "stream": "accounts", "record": {"id": "a1", "note": "x\ud800", "meta": {odd: "kept", "email": "LEAKSLOW@example.com"}}})

    run = run_mapper([schema(properties), line + "\n"])

    assert run.error is None
    assert run.records("accounts")[0]["meta"] == {odd: "kept"}
    assert "LEAKSLOW" not in run.text
