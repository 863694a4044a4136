"""Declaration validation: every problem reported at once, each with its path."""

from __future__ import annotations

import copy
import typing as t
from pathlib import Path

import pytest

from taps.engine.declaration import DeclarationError, load_declaration, parse_declaration
from tests.taps.test_engine import DECLARATION


def broken(change: t.Callable[[dict[str, t.Any]], None]) -> dict[str, t.Any]:
    document = copy.deepcopy(DECLARATION)
    change(document)
    return document


def problems_of(document: dict[str, t.Any]) -> list[str]:
    with pytest.raises(DeclarationError) as raised:
        parse_declaration(document)
    return raised.value.problems


def test_valid_declaration_builds_spec() -> None:
    source = parse_declaration(copy.deepcopy(DECLARATION))

    orders = source.streams[0]
    assert orders.name == "orders"
    assert orders.paginator.type == "cursor"
    assert orders.params == {"limit": 2}
    assert [f.name for f in orders.fields] == ["id", "created", "email", "total"]
    assert orders.fields[2].path == ("billing", "email")
    assert orders.fields[0].nullable is False


def test_unknown_paginator_type_lists_allowed_values() -> None:
    document = broken(lambda d: d["streams"]["orders"].update(paginator={"type": "bogus"}))

    assert problems_of(document) == [
        "streams.orders.paginator.type: 'bogus' is not one of the allowed values: cursor, single_page"
    ]


def test_all_problems_reported_together() -> None:
    def change(document: dict[str, t.Any]) -> None:
        document["streams"]["orders"]["fields"]["email"]["pii"] = "maybe"
        document["streams"]["orders"]["fields"]["total"]["type"] = "money"
        document["streams"]["orders"]["colour"] = "blue"

    problems = problems_of(broken(change))

    assert len(problems) == 3
    assert any(p.startswith("streams.orders.fields.email.pii: 'maybe' is not one of the allowed values: none, email") for p in problems)
    assert any(p.startswith("streams.orders.fields.total.type: 'money' is not one of") for p in problems)
    assert any(p.startswith("streams.orders: Additional properties are not allowed ('colour'") for p in problems)


def test_missing_pii_class_is_rejected() -> None:
    document = broken(lambda d: d["streams"]["orders"]["fields"]["total"].pop("pii"))

    assert problems_of(document) == ["streams.orders.fields.total: 'pii' is a required property"]


def test_primary_key_must_be_declared_field() -> None:
    document = broken(lambda d: d["streams"]["orders"].update(primary_key=["order_id"]))

    assert problems_of(document) == ["streams.orders.primary_key.0: 'order_id' is not a declared field"]


def test_template_must_name_declared_setting() -> None:
    document = broken(lambda d: d["headers"].update({"X-Account": "{config.account_id}"}))

    assert problems_of(document) == ["headers.X-Account: refers to setting 'account_id', which is not declared under settings"]


def test_replication_key_must_be_timestamp_or_integer() -> None:
    document = broken(lambda d: d["streams"]["orders"]["replication"].update(key="email"))

    assert problems_of(document) == ["streams.orders.replication.key: 'email' must be a date-time string or an integer field"]


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: acme\nstreams: [unclosed\n")

    with pytest.raises(DeclarationError, match="not valid YAML at line 3"):
        load_declaration(path)
