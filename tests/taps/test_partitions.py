"""Partitioned streams: one read and one bookmark per value of an array setting."""

from __future__ import annotations

import copy
import typing as t

import pytest
import responses

from taps.engine.declaration import DeclarationError, parse_declaration
from taps.engine.tap import build_tap_class
from tests.singer_run import final_state, records_of, run_tap
from tests.taps.test_engine import BASE, CONFIG, DECLARATION


def partitioned(setting_type: str = "array") -> dict[str, t.Any]:
    declaration = copy.deepcopy(DECLARATION)
    declaration["settings"].append({"name": "account_ids", "type": setting_type})
    orders = declaration["streams"]["orders"]
    orders["path"] = "/v1/accounts/{account_id}/orders"
    orders["paginator"] = {"type": "single_page"}
    orders["partitions"] = {"setting": "account_ids", "key": "account_id"}
    return declaration


def test_each_partition_read_with_own_bookmark() -> None:
    tap_class = build_tap_class(parse_declaration(partitioned()))
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/v1/accounts/111/orders", json={"data": [{"id": "a1", "created": 1_700_000_100}]})
        mock.add(responses.GET, f"{BASE}/v1/accounts/222/orders", json={"data": [{"id": "b1", "created": 1_700_000_900}]})
        messages = run_tap(tap_class, {**CONFIG, "account_ids": ["111", "222"]})

    assert [r["id"] for r in records_of(messages, "orders")] == ["a1", "b1"]
    partitions = final_state(messages)["bookmarks"]["orders"]["partitions"]
    assert {p["context"]["account_id"]: p["replication_key_value"] for p in partitions} == {
        "111": "2023-11-14T22:15:00+00:00",
        "222": "2023-11-14T22:28:20+00:00",
    }


def test_partition_setting_must_be_array() -> None:
    with pytest.raises(DeclarationError) as raised:
        parse_declaration(partitioned("string"))

    assert raised.value.problems == ["streams.orders.partitions.setting: 'account_ids' is not a declared setting of type array"]
