"""Engine keys added for Magento: list-element paths, page_size from a setting, filter_params, sql_datetime,
status_hints, bookmark_cap, sentinels that become null and JSON type checks."""

from __future__ import annotations

import copy
import email.utils
import re
import typing as t
from datetime import UTC, datetime

import pytest
import responses

from taps.engine.bookmark_cap import capped_record
from taps.engine.declaration import DeclarationError, parse_declaration
from taps.engine.fields import RecordShaper
from taps.engine.tap import build_tap_class
from taps.engine.transforms import FieldTransformError
from taps.engine.paths import ListMatch, parse_field_path
from taps.engine.windows import format_bound
from tests.singer_run import final_state, records_of, run_tap
from tests.taps.test_engine import BASE as ENGINE_API, CONFIG as ENGINE_CONFIG
from tests.taps.test_partitions import partitioned

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


def test_bookmark_cap_needs_date_time_key() -> None:
    replication = {"key": "id", "request_param": "since", "bookmark_cap": "read_start"}

    with pytest.raises(DeclarationError, match=r"replication\.bookmark_cap: the read start is a time, so 'id' must be a date-time field"):
        parse_declaration(declaration(replication=replication))


def test_bookmark_cap_unknown_value() -> None:
    replication = {"key": "updated_at", "bookmark_cap": "now"}

    with pytest.raises(DeclarationError, match=r"replication\.bookmark_cap: 'now' is not one of the allowed values: read_start"):
        parse_declaration(declaration(replication=replication))


def test_capped_record_values() -> None:
    cap = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
    later = {"id": 1, "updated_at": "2026-09-01T12:00:01+00:00"}

    assert capped_record(later, "updated_at", cap) == {"id": 1, "updated_at": "2026-09-01T12:00:00+00:00"}
    assert later["updated_at"] == "2026-09-01T12:00:01+00:00"
    assert capped_record({"updated_at": "2026-09-01T14:00:00+02:00"}, "updated_at", cap) == {"updated_at": "2026-09-01T14:00:00+02:00"}
    assert capped_record({"updated_at": None}, "updated_at", cap) == {"updated_at": None}


def test_bookmark_cap_per_partition() -> None:
    """Each partition's cap comes from its own first response's Date header."""
    document = partitioned()
    document["streams"]["orders"]["replication"]["bookmark_cap"] = "read_start"
    tap_class = build_tap_class(parse_declaration(document))

    def dated(epoch: int) -> dict[str, str]:
        return {"Date": email.utils.formatdate(epoch, usegmt=True)}

    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{ENGINE_API}/v1/accounts/111/orders", json={"data": [{"id": "a1", "created": 1_700_000_900}]}, headers=dated(1_700_000_500))
        mock.add(responses.GET, f"{ENGINE_API}/v1/accounts/222/orders", json={"data": [{"id": "b1", "created": 1_700_000_900}]}, headers=dated(1_700_001_000))
        messages = run_tap(tap_class, {**ENGINE_CONFIG, "account_ids": ["111", "222"]})

    assert [record["created"] for record in records_of(messages, "orders")] == ["2023-11-14T22:28:20+00:00"] * 2
    partitions = final_state(messages)["bookmarks"]["orders"]["partitions"]
    assert {p["context"]["account_id"]: p["replication_key_value"] for p in partitions} == {
        "111": datetime.fromtimestamp(1_700_000_440, tz=UTC).isoformat(),
        "222": "2023-11-14T22:28:20+00:00",
    }


def test_sentinel_use_null() -> None:
    fields = {
        "id": {"type": "integer", "pii": "none"},
        "updated_at": {
            "type": "string",
            "format": "date-time",
            "transform": "local_timestamp",
            "sentinels": {"values": ["0000-00-00 00:00:00"], "use": None},
            "pii": "none",
        },
    }
    shaper = RecordShaper(parse_declaration(declaration(fields=fields)).streams[0])

    assert shaper.shape({"id": 1, "updated_at": "0000-00-00 00:00:00"}) == {"id": 1, "updated_at": None}
    assert shaper.shape({"id": 2, "updated_at": "2026-01-02 03:04:05"}) == {"id": 2, "updated_at": "2026-01-02T03:04:05+00:00"}
    assert shaper.sentinel_summary() == "placeholder values instead of real ones: 0000-00-00 00:00:00 in updated_at (1)"


TYPED_FIELDS: dict[str, t.Any] = {
    "id": {"type": "integer", "pii": "none"},
    "name": {"type": "string", "pii": "none"},
    "price": {"type": "number", "pii": "none"},
    "active": {"type": "boolean", "pii": "none"},
    "tags": {"type": "array", "pii": "none"},
    "lines": {"type": "array", "pii": "none", "items": {"sku": {"type": "string"}}},
}


def typed_shaper() -> RecordShaper:
    return RecordShaper(parse_declaration(declaration(fields=TYPED_FIELDS)).streams[0])


def test_json_types_accepted() -> None:
    record = {"id": 1, "name": "Tee", "price": 19.99, "active": True, "tags": ["a"], "lines": [{"sku": "T-1"}]}

    assert typed_shaper().shape(record) == record
    assert typed_shaper().shape({"id": 5.0, "price": 3})["id"] == 5
    assert typed_shaper().shape({"id": None, "name": None}) == {"id": None, "name": None}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"name": ["a", "b"]}, "Field 'name': expected a JSON string, got a JSON array"),
        ({"id": "12"}, "Field 'id': expected a JSON integer, got a JSON string"),
        ({"id": True}, "Field 'id': expected a JSON integer, got a JSON boolean"),
        ({"id": 1.5}, "Field 'id': expected a JSON integer, got a JSON number"),
        ({"price": "19.99"}, "Field 'price': expected a JSON number, got a JSON string"),
        ({"active": 1}, "Field 'active': expected a JSON boolean, got a JSON integer"),
        ({"tags": "a,b"}, "Field 'tags': expected a JSON array, got a JSON string"),
        ({"name": {"en": "Tee"}}, "Field 'name': expected a JSON string, got a JSON object"),
        ({"lines": [{"sku": 12}]}, "Field 'lines[].sku': expected a JSON string, got a JSON integer"),
    ],
)
def test_wrong_json_type_rejected(record: dict[str, t.Any], message: str) -> None:
    with pytest.raises(FieldTransformError, match=re.escape(message)):
        typed_shaper().shape(record)


def test_key_label_only_for_keys_classed_none() -> None:
    shaper = typed_shaper()
    personal = copy.deepcopy(TYPED_FIELDS)
    personal["id"]["pii"] = "identifier"

    assert shaper.key_label({"id": 123}) == "id=123"
    assert shaper.key_label({}) == "id=(missing)"
    assert shaper.key_label({"id": "x" * 100}) == "id=" + repr("x" * 100)[:64]
    assert RecordShaper(parse_declaration(declaration(fields=personal)).streams[0]).key_label({"id": 123}) is None
