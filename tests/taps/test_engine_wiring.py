"""Declared paginators, POST bodies, auth and retries, wired through a real declarative tap."""

from __future__ import annotations

import copy
import json
import logging
import typing as t

import pytest
import responses

from taps.engine.declaration import parse_declaration
from taps.engine.tap import build_tap_class
from tests.singer_run import records_of, run_tap
from tests.taps.test_engine import BASE, CONFIG, DECLARATION

ROWS = [{"id": f"r{index}", "total": index} for index in range(5)]


def tap_with(stream_changes: dict[str, t.Any], **top: t.Any) -> type:
    declaration = copy.deepcopy(DECLARATION)
    declaration["streams"]["orders"].pop("replication")
    declaration["streams"]["orders"]["fields"].pop("created")
    declaration["streams"]["orders"].update(stream_changes)
    declaration.update(top)
    return build_tap_class(parse_declaration(declaration))


def test_post_body_with_offset_in_body() -> None:
    tap_class = tap_with(
        {
            "method": "POST",
            "body": {"query": "select * from orders version {config.api_version}", "limit": 2},
            "records": "$.rows[*]",
            "paginator": {"type": "offset", "in": "body", "page_size": 2, "total": "rowCount"},
        }
    )
    bodies = []

    def serve(request: t.Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        bodies.append(body)
        offset = body.get("offset", 0)
        return 200, {}, json.dumps({"rows": ROWS[offset : offset + 2], "rowCount": len(ROWS)})

    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, f"{BASE}/v1/orders", callback=serve)
        records = records_of(run_tap(tap_class, CONFIG), "orders")

    assert [r["id"] for r in records] == ["r0", "r1", "r2", "r3", "r4"]
    assert bodies[0]["query"] == "select * from orders version 2026-01-01"
    assert [b.get("offset", 0) for b in bodies] == [0, 2, 4]


def test_next_link_pages_and_total_mismatch_warns(caplog: pytest.LogCaptureFixture) -> None:
    tap_class = tap_with({"records": "$.data[*]", "paginator": {"type": "next_link", "path": "paging.next", "total": "summary.total_count"}})
    pages = [
        {"data": ROWS[:2], "paging": {"next": f"{BASE}/v1/orders?after=c2"}, "summary": {"total_count": 6}},
        {"data": ROWS[2:], "summary": {"total_count": 6}},
    ]
    with responses.RequestsMock() as mock:
        for page in pages:
            mock.add(responses.GET, f"{BASE}/v1/orders", json=page)
        with caplog.at_level(logging.WARNING):
            records = records_of(run_tap(tap_class, CONFIG), "orders")
        second_url = mock.calls[1].request.url

    assert [r["id"] for r in records] == ["r0", "r1", "r2", "r3", "r4"]
    assert "after=c2" in second_url
    assert "read 5 row(s)" in caplog.text
    assert "total of 6" in caplog.text


def test_api_key_in_query_and_throttle_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    from taps.engine.retry import RetryingStreamMixin

    waits: list[float] = []
    monkeypatch.setattr(RetryingStreamMixin, "retry_sleep", staticmethod(waits.append), raising=False)
    tap_class = tap_with(
        {"paginator": {"type": "single_page"}},
        auth={"type": "api_key", "name": "key", "value": "{config.api_key}", "in": "query"},
    )
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/v1/orders", status=429, headers={"Retry-After": "3"}, json={})
        mock.add(responses.GET, f"{BASE}/v1/orders", json={"data": ROWS[:1]})
        records = records_of(run_tap(tap_class, CONFIG), "orders")
        urls = [call.request.url for call in mock.calls]

    assert [r["id"] for r in records] == ["r0"]
    assert waits == [3.0]
    assert all("key=sk_test_secret_value_123" in url for url in urls)


def test_debug_logs_hold_no_key_or_personal_value(caplog: pytest.LogCaptureFixture) -> None:
    import re

    from sandbox.stripe_api import DEMO_API_KEY, responses_callback
    from sandbox.stripe_data import StripeWorld
    from taps.stripe import TapStripe

    world = StripeWorld(seed=11, anchor=1_790_000_000)
    api = "http://stripe-canary.test"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, re.compile(re.escape(api) + r"/v1/.*"), callback=responses_callback(world))
        with caplog.at_level(logging.DEBUG):
            messages = run_tap(TapStripe, {"api_key": DEMO_API_KEY, "api_url": api})

    assert len(records_of(messages, "charges")) == world.count("charges")
    assert len(caplog.records) > 20
    assert DEMO_API_KEY not in caplog.text
    leaked = [value for value in world.personal_values() if value in caplog.text]
    assert leaked == []


def test_deleted_objects_become_tombstones() -> None:
    tap_class = tap_with({"paginator": {"type": "single_page"}, "deleted_when": {"path": "deleted", "equals": True}})
    rows = [{"id": "r1", "total": 1}, {"id": "r2", "deleted": True}]
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/v1/orders", json={"data": rows})
        messages = run_tap(tap_class, CONFIG)

    records = records_of(messages, "orders")
    schema = next(m for m in messages if m["type"] == "SCHEMA")["schema"]
    assert records[0]["_sdc_deleted_at"] is None
    assert records[1]["_sdc_deleted_at"].startswith("20")
    assert records[1]["id"] == "r2"
    assert schema["properties"]["_sdc_deleted_at"]["x-pii"] == "none"
