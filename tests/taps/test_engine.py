"""The declarative engine against HTTP mocked with `responses`, no YAML involved."""

from __future__ import annotations

import copy
import json
import logging
import typing as t
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from taps.engine.declaration import parse_declaration
from taps.engine.pagination import PaginationError
from taps.engine.tap import build_tap_class
from tests.singer_run import final_state, records_of, run_tap, schema_of

BASE = "http://api.test"

DECLARATION: dict[str, t.Any] = {
    "name": "acme",
    "api": {"base_url": "{config.api_url}"},
    "auth": {"type": "bearer", "token": "{config.api_key}"},
    "headers": {"Acme-Version": "{config.api_version}"},
    "settings": [
        {"name": "api_key", "type": "string", "required": True, "secret": True},
        {"name": "api_url", "type": "string", "default": BASE},
        {"name": "api_version", "type": "string", "default": "2026-01-01"},
        {"name": "start_date", "type": "string", "format": "date-time"},
    ],
    "errors": {"safe_fields": ["error.code"]},
    "stream_defaults": {
        "records": "$.data[*]",
        "paginator": {"type": "cursor", "has_more": "has_more", "cursor_field": "id", "cursor_param": "starting_after"},
        "params": {"limit": 2},
    },
    "streams": {
        "orders": {
            "path": "/v1/orders",
            "primary_key": ["id"],
            "replication": {"key": "created", "request_param": "created[gte]", "request_format": "epoch_seconds"},
            "ignored_fields": ["object"],
            "fields": {
                "id": {"type": "string", "pii": "none"},
                "created": {"type": "string", "format": "date-time", "transform": "epoch_seconds", "pii": "none"},
                "email": {"type": "string", "path": "billing.email", "pii": "email"},
                "total": {"type": "integer", "pii": "none"},
            },
        },
    },
}

ORDERS = [  # newest first, as Stripe-style APIs list them
    {"id": "o5", "object": "order", "created": 1_700_000_500, "billing": {"email": "e5@example.com"}, "total": 5, "secret_note": "x"},
    {"id": "o4", "object": "order", "created": 1_700_000_400, "billing": {"email": "e4@example.com"}, "total": 4, "secret_note": "x"},
    {"id": "o3", "object": "order", "created": 1_700_000_400, "billing": None, "total": 3, "secret_note": "x"},
    {"id": "o2", "object": "order", "created": 1_700_000_200, "billing": {"email": None}, "total": 2, "secret_note": "x"},
    {"id": "o1", "object": "order", "created": 1_700_000_100, "total": 1, "secret_note": "x"},
]

CONFIG = {"api_key": "sk_test_secret_value_123", "api_url": BASE}


def make_tap(declaration: dict[str, t.Any] | None = None) -> type:
    return build_tap_class(parse_declaration(copy.deepcopy(declaration or DECLARATION)))


def list_orders(request: t.Any) -> tuple[int, dict[str, str], str]:
    """Serve ORDERS with `limit`, `starting_after` and `created[gte]` like the real API."""
    query = parse_qs(urlparse(request.url).query)
    assert request.headers["Authorization"] == "Bearer sk_test_secret_value_123"
    assert request.headers["Acme-Version"] == "2026-01-01"

    rows = ORDERS
    if "created[gte]" in query:
        rows = [row for row in rows if row["created"] >= int(query["created[gte]"][0])]
    if "starting_after" in query:
        ids = [row["id"] for row in rows]
        rows = rows[ids.index(query["starting_after"][0]) + 1 :]
    limit = int(query["limit"][0])
    body = {"object": "list", "has_more": len(rows) > limit, "data": rows[:limit]}
    return 200, {"Content-Type": "application/json"}, json.dumps(body)


@pytest.fixture
def api() -> t.Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, f"{BASE}/v1/orders", callback=list_orders)
        yield mock


def test_sync_pages_through_every_record(api: responses.RequestsMock) -> None:
    messages = run_tap(make_tap(), CONFIG)

    records = records_of(messages, "orders")
    assert [r["id"] for r in records] == ["o5", "o4", "o3", "o2", "o1"]
    assert len(api.calls) == 3


def test_records_hold_only_declared_fields(api: responses.RequestsMock) -> None:
    records = records_of(run_tap(make_tap(), CONFIG), "orders")

    assert records[0] == {"id": "o5", "created": "2023-11-14T22:21:40+00:00", "email": "e5@example.com", "total": 5}
    assert all("secret_note" not in r and "object" not in r and "billing" not in r for r in records)
    assert "email" not in records[-1]
    assert records[3]["email"] is None


def test_schema_message_carries_pii_classes(api: responses.RequestsMock) -> None:
    schema = schema_of(run_tap(make_tap(), CONFIG), "orders")

    assert {name: prop["x-pii"] for name, prop in schema["properties"].items()} == {
        "id": "none",
        "created": "none",
        "email": "email",
        "total": "none",
    }


def test_bookmark_is_maximum_of_newest_first_listing(api: responses.RequestsMock) -> None:
    state = final_state(run_tap(make_tap(), CONFIG))

    bookmark = state["bookmarks"]["orders"]
    assert bookmark["replication_key"] == "created"
    assert bookmark["replication_key_value"] == "2023-11-14T22:21:40+00:00"
    assert "progress_markers" not in bookmark


def test_second_run_rereads_bookmark_inclusively(api: responses.RequestsMock) -> None:
    state = {"bookmarks": {"orders": {"replication_key": "created", "replication_key_value": "2023-11-14T22:20:00+00:00"}}}

    records = records_of(run_tap(make_tap(), CONFIG, state=state), "orders")

    first_query = parse_qs(urlparse(api.calls[0].request.url).query)
    assert first_query["created[gte]"] == ["1700000400"]
    assert [r["id"] for r in records] == ["o5", "o4", "o3"]


def test_start_date_bounds_first_run(api: responses.RequestsMock) -> None:
    records = records_of(run_tap(make_tap(), {**CONFIG, "start_date": "2023-11-14T22:16:40Z"}), "orders")

    assert [r["id"] for r in records] == ["o5", "o4", "o3", "o2"]


def test_duplicate_key_in_one_run_is_emitted_once() -> None:
    pages = [
        {"has_more": True, "data": [ORDERS[0], ORDERS[1]]},
        {"has_more": False, "data": [ORDERS[1], ORDERS[2]]},
    ]
    with responses.RequestsMock() as mock:
        for page in pages:
            mock.add(responses.GET, f"{BASE}/v1/orders", json=page)
        records = records_of(run_tap(make_tap(), CONFIG), "orders")

    assert [r["id"] for r in records] == ["o5", "o4", "o3"]


def test_repeated_page_stops_with_error() -> None:
    page = {"has_more": True, "data": [ORDERS[0], ORDERS[1]]}
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/v1/orders", json=page)
        mock.add(responses.GET, f"{BASE}/v1/orders", json=page)
        with pytest.raises(PaginationError, match="same 2 record id"):
            run_tap(make_tap(), CONFIG)


def test_empty_page_with_has_more_fails() -> None:
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/v1/orders", json={"has_more": True, "data": [ORDERS[0]]})
        mock.add(responses.GET, f"{BASE}/v1/orders", json={"has_more": True, "data": []})
        with pytest.raises(PaginationError, match="Stream 'orders': page 2 has no records but 'has_more' reports more pages"):
            run_tap(make_tap(), CONFIG)

        assert len(mock.calls) == 2


def test_http_error_hides_body_and_key(caplog: pytest.LogCaptureFixture) -> None:
    body = {"error": {"code": "api_key_invalid", "message": "Invalid key sk_test_secret_value_123 for jane@example.com"}}
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/v1/orders", json=body, status=401)
        with caplog.at_level(logging.DEBUG), pytest.raises(Exception, match="401") as raised:
            run_tap(make_tap(), CONFIG)

    message = str(raised.value)
    assert "error.code=api_key_invalid" in message
    assert "/v1/orders" in message
    assert "jane@example.com" not in message
    assert "sk_test_secret_value_123" not in message
    assert "sk_test_secret_value_123" not in caplog.text
    assert "jane@example.com" not in caplog.text


def test_undeclared_fields_counted_in_one_line(api: responses.RequestsMock, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        run_tap(make_tap(), CONFIG)

    lines = [record.getMessage() for record in caplog.records if "undeclared" in record.getMessage()]
    assert lines == ["Stream orders: dropped 1 undeclared field(s) from 5 record(s): secret_note (5)"]


def test_catalog_cannot_change_replication_key(api: responses.RequestsMock) -> None:
    from singer_sdk.exceptions import ConfigValidationError

    tap_class = make_tap()
    catalog = tap_class(config=CONFIG, parse_env_config=False).catalog_dict
    catalog["streams"][0]["replication_key"] = "email"

    with pytest.raises(ConfigValidationError) as raised:
        _ = tap_class(config=CONFIG, catalog=catalog, parse_env_config=False).streams
    assert "the catalog sets replication key 'email', but the declaration uses 'created'" in raised.value.errors[0]


def test_transport_error_hides_cursor(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    from taps.engine.stream import DeclarativeStream
    from taps.engine.tap import StreamsStoppedError

    monkeypatch.setattr(DeclarativeStream, "backoff_wait_generator", lambda self: (0.0 for _ in range(100)))
    first_page = {"has_more": True, "data": [ORDERS[0], ORDERS[1]]}
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/v1/orders", json=first_page)
        for _ in range(5):
            mock.add(responses.GET, f"{BASE}/v1/orders", body=requests.exceptions.ConnectionError("refused for /v1/orders?starting_after=o4"))
        with caplog.at_level(logging.DEBUG), pytest.raises(StreamsStoppedError) as raised:
            run_tap(make_tap(), CONFIG)

    assert "gave up on path /v1/orders after 6 attempt(s); the last attempt failed with ConnectionError." in str(raised.value)
    assert "starting_after" not in str(raised.value)
    assert "starting_after=o4" not in caplog.text
    assert "retrying /v1/orders" in caplog.text
