"""Engine keys added for Magento: list-element paths, page_size from a setting, filter_params, sql_datetime, status_hints."""

from __future__ import annotations

import copy
import typing as t
from datetime import UTC, datetime

import pytest

from taps.engine.declaration import DeclarationError, parse_declaration
from taps.engine.fields import RecordShaper
from taps.engine.paths import ListMatch, parse_field_path
from taps.engine.windows import format_bound

BASE: dict[str, t.Any] = {
    "name": "shop",
    "api": {"base_url": "{config.api_url}"},
    "auth": {"type": "bearer", "token": "{config.token}"},
    "settings": [
        {"name": "api_url", "type": "string", "required": True},
        {"name": "token", "type": "string", "required": True, "secret": True},
        {"name": "start_date", "type": "string", "format": "date-time"},
        {"name": "page_size", "type": "integer", "default": 100},
        {"name": "label", "type": "string", "default": "x"},
    ],
    "streams": {
        "products": {
            "path": "/V1/products",
            "records": "$.items[*]",
            "paginator": {"type": "page_number"},
            "primary_key": ["id"],
            "fields": {
                "id": {"type": "integer", "pii": "none"},
                "updated_at": {"type": "string", "format": "date-time", "pii": "none"},
                "special_price": {
                    "type": "number",
                    "path": "custom_attributes[attribute_code=special_price].value",
                    "transform": "numeric_string",
                    "pii": "none",
                },
            },
        }
    },
}


def declaration(**stream_changes: t.Any) -> dict[str, t.Any]:
    document = copy.deepcopy(BASE)
    document["streams"]["products"].update(stream_changes)
    return document


def test_path_with_list_match_parsed() -> None:
    assert parse_field_path("custom_attributes[attribute_code=special_price].value") == (
        "custom_attributes",
        ListMatch("attribute_code", "special_price"),
        "value",
    )


def test_list_match_value_may_hold_dot() -> None:
    assert parse_field_path("a[code=v.1].value") == ("a", ListMatch("code", "v.1"), "value")


@pytest.mark.parametrize("path", ["a[code].value", "a[=x].value", "a..b", "a[code=x]b"])
def test_bad_path_rejected_with_place(path: str) -> None:
    document = declaration()
    document["streams"]["products"]["fields"]["special_price"]["path"] = path

    with pytest.raises(DeclarationError, match=r"streams\.products\.fields\.special_price\.path: step \d+ .* is not valid"):
        parse_declaration(document)


def test_list_match_picks_element() -> None:
    shaper = RecordShaper(parse_declaration(declaration()).streams[0])
    record = {"id": 1, "custom_attributes": [{"attribute_code": "cost", "value": "3.5000"}, {"attribute_code": "special_price", "value": "19.9900"}]}

    assert str(shaper.shape(record)["special_price"]) == "19.9900"


def test_list_match_missing_element_leaves_field_out() -> None:
    shaper = RecordShaper(parse_declaration(declaration()).streams[0])

    assert shaper.shape({"id": 1, "custom_attributes": [{"attribute_code": "cost", "value": "3"}]}) == {"id": 1}
    assert shaper.shape({"id": 2, "custom_attributes": None}) == {"id": 2, "special_price": None}


def test_page_size_from_setting() -> None:
    spec = parse_declaration(declaration(page_size="{config.page_size}"))

    assert spec.streams[0].page_size == "{config.page_size}"


def test_page_size_needs_sized_paginator() -> None:
    with pytest.raises(DeclarationError, match=r"streams\.products\.page_size: paginator 'single_page' takes no page size"):
        parse_declaration(declaration(page_size=50, paginator={"type": "single_page"}))


def test_page_size_needs_integer_setting() -> None:
    with pytest.raises(DeclarationError, match=r"setting 'label' must be an integer setting with a default"):
        parse_declaration(declaration(page_size="{config.label}"))


def test_page_size_unknown_setting() -> None:
    with pytest.raises(DeclarationError, match=r"streams\.products\.page_size: refers to setting 'nope'"):
        parse_declaration(declaration(page_size="{config.nope}"))


def test_filter_params_need_request_param() -> None:
    replication = {"key": "updated_at", "filter_params": {"f[field]": "updated_at"}}

    with pytest.raises(DeclarationError, match=r"replication\.filter_params: filter_params go with the lower bound"):
        parse_declaration(declaration(replication=replication))


def test_sql_datetime_bound_in_utc() -> None:
    moment = datetime(2026, 9, 1, 2, 30, 15, 900_000).replace(tzinfo=UTC)

    assert format_bound(moment, "sql_datetime", None) == "2026-09-01 02:30:15"


def test_status_hint_status_checked() -> None:
    document = declaration()
    document["status_hints"] = [{"status": 200, "hint": "never"}]

    with pytest.raises(DeclarationError, match=r"status_hints\.0\.status: 200 is less than the minimum of 400"):
        parse_declaration(document)
