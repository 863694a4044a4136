"""A stream with a `changes` section: full read, events since the bookmark, tombstones, expired bookmarks."""

from __future__ import annotations

import copy
import email.utils
import logging
import typing as t
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses

from singer_sdk.exceptions import ConfigValidationError

from taps.engine.change_feed import is_expired, server_time
from taps.engine.pagination import PaginationError
from taps.engine.declaration import DeclarationError, parse_declaration
from taps.engine.tap import StreamsStoppedError, build_tap_class
from tests.singer_run import final_state, records_of, run_tap

BASE = "http://api.test"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CONFIG = {"api_key": "k", "api_url": BASE}

DECLARATION: dict[str, t.Any] = {
    "name": "acme",
    "api": {"base_url": "{config.api_url}"},
    "auth": {"type": "bearer", "token": "{config.api_key}"},
    "settings": [
        {"name": "api_key", "type": "string", "required": True, "secret": True},
        {"name": "api_url", "type": "string", "default": BASE},
        {"name": "start_date", "type": "string", "format": "date-time"},
        {"name": "expired_events", "type": "string", "default": "full_refresh", "pattern": "^(full_refresh|fail)$"},
    ],
    "stream_defaults": {
        "records": "$.data[*]",
        "paginator": {"type": "cursor", "has_more": "has_more", "cursor_field": "id", "cursor_param": "starting_after"},
        "params": {"limit": 2},
    },
    "streams": {
        "customers": {
            "path": "/v1/customers",
            "primary_key": ["id"],
            "changes": {
                "path": "/v1/events",
                "types": ["customer.created", "customer.updated", "customer.deleted"],
                "object_type": "customer",
                "deleted_types": ["customer.deleted"],
                "start_param": "created[gte]",
                "retention_days": 30,
                "on_expired_bookmark": "{config.expired_events}",
                "params": {"limit": 2},
            },
            "ignored_fields": ["object"],
            "fields": {
                "id": {"type": "string", "pii": "identifier"},
                "created": {"type": "string", "format": "date-time", "transform": "epoch_seconds", "pii": "none"},
                "email": {"type": "string", "pii": "email"},
                "plan": {"type": "string", "pii": "none"},
            },
        },
    },
}


def tap_class(declaration: dict[str, t.Any] | None = None) -> type:
    return build_tap_class(parse_declaration(copy.deepcopy(declaration or DECLARATION)))


def customer(object_id: str, email_address: str, plan: str = "basic") -> dict[str, t.Any]:
    return {"id": object_id, "object": "customer", "created": 1_700_000_000, "email": email_address, "plan": plan}


def event(event_id: str, event_type: str, moment: datetime, obj: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"id": event_id, "object": "event", "type": event_type, "created": int(moment.timestamp()), "data": {"object": obj}}


def page(items: list[dict[str, t.Any]], has_more: bool = False) -> dict[str, t.Any]:
    return {"object": "list", "has_more": has_more, "data": items}


def date_header(moment: datetime) -> dict[str, str]:
    return {"Date": email.utils.format_datetime(moment, usegmt=True)}


def state_at(moment: datetime, key: str = "_sdc_changed_at") -> dict[str, t.Any]:
    return {"bookmarks": {"customers": {"replication_key": key, "replication_key_value": moment.isoformat()}}}


def bookmark_of(messages: list[dict[str, t.Any]]) -> str:
    return final_state(messages)["bookmarks"]["customers"]["replication_key_value"]


# The first run


@responses.activate
def test_first_run_reads_list_and_bookmarks_its_start() -> None:
    responses.add(responses.GET, f"{BASE}/v1/customers", json=page([customer("c2", "b@example.com"), customer("c1", "a@example.com")]), headers=date_header(NOW))

    messages = run_tap(tap_class(), {**CONFIG, "start_date": "2026-01-01T00:00:00Z"})

    records = records_of(messages, "customers")
    assert [record["id"] for record in records] == ["c2", "c1"]
    assert {record["_sdc_changed_at"] for record in records} == {NOW.isoformat()}
    assert {record["_sdc_deleted_at"] for record in records} == {None}
    assert bookmark_of(messages) == NOW.isoformat()
    query = parse_qs(urlparse(responses.calls[0].request.url).query)
    assert query["created[gte]"] == [str(int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()))]


@responses.activate
def test_empty_list_still_sets_bookmark() -> None:
    responses.add(responses.GET, f"{BASE}/v1/customers", json=page([]), headers=date_header(NOW))

    messages = run_tap(tap_class(), CONFIG)

    assert records_of(messages, "customers") == []
    assert bookmark_of(messages) == NOW.isoformat()


@responses.activate
def test_created_bookmark_of_older_state_reads_list(caplog: pytest.LogCaptureFixture) -> None:
    responses.add(responses.GET, f"{BASE}/v1/customers", json=page([customer("c1", "a@example.com")]), headers=date_header(NOW))

    with caplog.at_level(logging.WARNING):
        messages = run_tap(tap_class(), CONFIG, state=state_at(NOW - timedelta(days=3), key="created"))

    assert [record["id"] for record in records_of(messages, "customers")] == ["c1"]
    assert bookmark_of(messages) == NOW.isoformat()
    assert final_state(messages)["bookmarks"]["customers"]["replication_key"] == "_sdc_changed_at"
    assert "the saved bookmark is on 'created'" in caplog.text
    assert all("/v1/events" not in call.request.url for call in responses.calls)


# Later runs


@responses.activate
def test_newest_event_per_object_wins() -> None:
    bookmark = NOW - timedelta(days=2)
    events = [
        event("e4", "customer.updated", NOW - timedelta(hours=1), customer("c1", "new@example.com", "pro")),
        event("e3", "customer.updated", NOW - timedelta(hours=2), customer("c2", "b@example.com")),
        event("e2", "customer.updated", NOW - timedelta(hours=3), customer("c1", "old@example.com", "basic")),
        event("e1", "customer.created", NOW - timedelta(hours=4), customer("c1", "first@example.com")),
    ]
    responses.add(responses.GET, f"{BASE}/v1/events", json=page(events[:2], has_more=True), headers=date_header(NOW))
    responses.add(responses.GET, f"{BASE}/v1/events", json=page(events[2:]), headers=date_header(NOW))

    messages = run_tap(tap_class(), CONFIG, state=state_at(bookmark))

    records = records_of(messages, "customers")
    assert [(record["id"], record["email"], record["plan"]) for record in records] == [
        ("c1", "new@example.com", "pro"),
        ("c2", "b@example.com", "basic"),
    ]
    assert records[0]["_sdc_changed_at"] == (NOW - timedelta(hours=1)).isoformat()
    first = parse_qs(urlparse(responses.calls[0].request.url).query)
    assert first["types[]"] == ["customer.created", "customer.updated", "customer.deleted"]
    assert first["created[gte]"] == [str(int(bookmark.timestamp()))]
    assert parse_qs(urlparse(responses.calls[1].request.url).query)["starting_after"] == ["e3"]
    # The bookmark moves to the read's start less five minutes, after the newest event.
    assert bookmark_of(messages) == (NOW - timedelta(minutes=5)).isoformat()


@responses.activate
def test_deletion_becomes_tombstone() -> None:
    deleted_at = NOW - timedelta(hours=1)
    events = [
        event("e2", "customer.deleted", deleted_at, customer("c1", "gone@example.com", "pro")),
        event("e1", "customer.updated", NOW - timedelta(hours=2), customer("c1", "gone@example.com")),
    ]
    responses.add(responses.GET, f"{BASE}/v1/events", json=page(events), headers=date_header(NOW))

    messages = run_tap(tap_class(), CONFIG, state=state_at(NOW - timedelta(days=1)))

    assert records_of(messages, "customers") == [
        {
            "id": "c1",
            "created": None,
            "email": None,
            "plan": None,
            "_sdc_changed_at": deleted_at.isoformat(),
            "_sdc_deleted_at": deleted_at.isoformat(),
        }
    ]
    assert "gone@example.com" not in str(messages)


@responses.activate
def test_events_of_other_objects_skipped(caplog: pytest.LogCaptureFixture) -> None:
    subscription = {"id": "sub_1", "object": "subscription", "customer": "c1", "email": "x@example.com"}
    events = [
        event("e2", "customer.updated", NOW - timedelta(hours=1), subscription),
        event("e1", "customer.updated", NOW - timedelta(hours=2), customer("c1", "a@example.com")),
    ]
    responses.add(responses.GET, f"{BASE}/v1/events", json=page(events), headers=date_header(NOW))

    with caplog.at_level(logging.INFO):
        messages = run_tap(tap_class(), CONFIG, state=state_at(NOW - timedelta(days=1)))

    assert [record["id"] for record in records_of(messages, "customers")] == ["c1"]
    assert "skipped 1 event(s) whose object type is not 'customer'" in caplog.text


@responses.activate
def test_deletion_wins_same_second() -> None:
    """Newest first cannot order two events of one second: the update may be listed before the deletion."""
    moment = NOW - timedelta(hours=1)
    events = [
        event("e2", "customer.updated", moment, customer("c1", "gone@example.com", "pro")),
        event("e3", "customer.deleted", moment, customer("c1", "gone@example.com", "pro")),
        event("e1", "customer.updated", NOW - timedelta(hours=2), customer("c2", "b@example.com")),
    ]
    responses.add(responses.GET, f"{BASE}/v1/events", json=page(events), headers=date_header(NOW))

    messages = run_tap(tap_class(), CONFIG, state=state_at(NOW - timedelta(days=1)))

    records = {record["id"]: record for record in records_of(messages, "customers")}
    assert len(records_of(messages, "customers")) == 2
    assert records["c1"]["_sdc_deleted_at"] == moment.isoformat()
    assert records["c1"]["email"] is None
    assert records["c2"]["_sdc_deleted_at"] is None
    assert "gone@example.com" not in str(messages)


@responses.activate
def test_deletion_wins_over_later_event() -> None:
    """A server that lists events out of order still cannot bring a deleted object back."""
    events = [
        event("e1", "customer.deleted", NOW - timedelta(hours=2), customer("c1", "a@example.com")),
        event("e2", "customer.updated", NOW - timedelta(hours=1), customer("c1", "a@example.com", "pro")),
    ]
    responses.add(responses.GET, f"{BASE}/v1/events", json=page(events), headers=date_header(NOW))

    messages = run_tap(tap_class(), CONFIG, state=state_at(NOW - timedelta(days=1)))

    [record] = records_of(messages, "customers")
    assert record["_sdc_deleted_at"] == (NOW - timedelta(hours=2)).isoformat()
    assert record["plan"] is None


@responses.activate
def test_bookmark_is_start_less_margin() -> None:
    """An event 10 s before the read must not become the bookmark: a later-visible event in that gap would be missed."""
    responses.add(
        responses.GET, f"{BASE}/v1/events",
        json=page([event("e1", "customer.updated", NOW - timedelta(seconds=10), customer("c1", "a@example.com"))]),
        headers=date_header(NOW),
    )

    messages = run_tap(tap_class(), CONFIG, state=state_at(NOW - timedelta(days=1)))

    assert records_of(messages, "customers")[0]["_sdc_changed_at"] == (NOW - timedelta(seconds=10)).isoformat()
    assert bookmark_of(messages) == (NOW - timedelta(minutes=5)).isoformat()


@responses.activate
def test_bookmark_never_moves_back() -> None:
    """A server clock behind the bookmark keeps the old bookmark."""
    bookmark = NOW - timedelta(minutes=1)
    responses.add(
        responses.GET, f"{BASE}/v1/events",
        json=page([event("e1", "customer.updated", NOW, customer("c1", "a@example.com"))]),
        headers=date_header(NOW),
    )

    messages = run_tap(tap_class(), CONFIG, state=state_at(bookmark))

    assert [record["id"] for record in records_of(messages, "customers")] == ["c1"]
    assert bookmark_of(messages) == bookmark.isoformat()


@responses.activate
def test_events_older_than_bookmark_skipped(caplog: pytest.LogCaptureFixture) -> None:
    """A server that ignores created[gte] must not let an old event overwrite a newer row."""
    bookmark = NOW - timedelta(days=1)
    events = [
        event("e2", "customer.updated", NOW - timedelta(hours=1), customer("c2", "b@example.com")),
        event("e1", "customer.updated", bookmark - timedelta(seconds=1), customer("c1", "stale@example.com")),
        event("e0", "customer.created", bookmark - timedelta(days=3), customer("c1", "older@example.com")),
    ]
    responses.add(responses.GET, f"{BASE}/v1/events", json=page(events), headers=date_header(NOW))

    with caplog.at_level(logging.INFO):
        messages = run_tap(tap_class(), CONFIG, state=state_at(bookmark))

    assert [record["id"] for record in records_of(messages, "customers")] == ["c2"]
    assert "skipped 2 event(s) older than the bookmark" in caplog.text
    assert "stale@example.com" not in caplog.text


@responses.activate
def test_event_at_bookmark_kept() -> None:
    """An event exactly at the bookmark is inside the inclusive bound."""
    bookmark = NOW - timedelta(days=1)
    responses.add(
        responses.GET, f"{BASE}/v1/events",
        json=page([event("e1", "customer.updated", bookmark, customer("c1", "a@example.com"))]),
        headers=date_header(NOW),
    )

    messages = run_tap(tap_class(), CONFIG, state=state_at(bookmark))

    assert [record["id"] for record in records_of(messages, "customers")] == ["c1"]


@responses.activate
def test_empty_page_with_more_fails() -> None:
    bookmark = NOW - timedelta(days=1)
    responses.add(
        responses.GET, f"{BASE}/v1/events",
        json=page([event("e2", "customer.updated", NOW - timedelta(hours=1), customer("c1", "a@example.com"))], has_more=True),
        headers=date_header(NOW),
    )
    responses.add(responses.GET, f"{BASE}/v1/events", json=page([], has_more=True), headers=date_header(NOW))

    tap = tap_class()(config=CONFIG, state=state_at(bookmark), parse_env_config=False)
    with pytest.raises(PaginationError, match=r"Stream 'customers': page 2 has no records but 'has_more' reports more pages"):
        tap.sync_all()

    assert tap.state["bookmarks"]["customers"]["replication_key_value"] == bookmark.isoformat()


@responses.activate
def test_empty_list_page_with_more_fails() -> None:
    responses.add(responses.GET, f"{BASE}/v1/customers", json=page([], has_more=True), headers=date_header(NOW))

    tap = tap_class()(config=CONFIG, parse_env_config=False)
    with pytest.raises(PaginationError, match=r"page 1 has no records"):
        tap.sync_all()

    assert "replication_key_value" not in tap.state.get("bookmarks", {}).get("customers", {})


# Events rendered in another API version

PINNED = "2026-08-26.dahlia"
OLD_VERSION = "2024-06-20"


def versioned_declaration(deletions: bool = True) -> dict[str, t.Any]:
    declaration = copy.deepcopy(DECLARATION)
    declaration["settings"].append({"name": "api_version", "type": "string", "default": PINNED})
    declaration["headers"] = {"Stripe-Version": "{config.api_version}"}
    changes = declaration["streams"]["customers"]["changes"]
    changes.update({"retrieve": "/v1/customers/{id}", "pinned_version": "{config.api_version}"})
    if not deletions:
        changes.pop("deleted_types")
        changes["types"] = ["customer.created", "customer.updated"]
    return declaration


def versioned(event_id: str, event_type: str, moment: datetime, obj: dict[str, t.Any], version: str | None) -> dict[str, t.Any]:
    return {**event(event_id, event_type, moment, obj), "api_version": version}


def old_shape(object_id: str) -> dict[str, t.Any]:
    """A customer as an older API version rendered it: `plan` sat elsewhere."""
    return {"id": object_id, "object": "customer", "created": 1_700_000_000, "email": "a@example.com", "subscription_plan": "pro"}


@responses.activate
def test_other_version_read_again(caplog: pytest.LogCaptureFixture) -> None:
    events = [
        versioned("e3", "customer.updated", NOW - timedelta(hours=1), old_shape("c1"), OLD_VERSION),
        versioned("e2", "customer.updated", NOW - timedelta(hours=2), customer("c2", "b@example.com", "basic"), PINNED),
        versioned("e1", "customer.updated", NOW - timedelta(hours=3), old_shape("c3"), None),
    ]
    responses.add(responses.GET, f"{BASE}/v1/events", json=page(events), headers=date_header(NOW))
    responses.add(responses.GET, f"{BASE}/v1/customers/c1", json=customer("c1", "a@example.com", "pro"))
    responses.add(responses.GET, f"{BASE}/v1/customers/c3", json=customer("c3", "c@example.com", "team"))

    with caplog.at_level(logging.INFO):
        messages = run_tap(tap_class(versioned_declaration()), CONFIG, state=state_at(NOW - timedelta(days=1)))

    records = {record["id"]: record for record in records_of(messages, "customers")}
    assert records["c1"]["plan"] == "pro"
    assert records["c1"]["_sdc_changed_at"] == (NOW - timedelta(hours=1)).isoformat()
    assert records["c3"]["plan"] == "team"
    assert records["c2"]["plan"] == "basic"
    retrieves = [call.request for call in responses.calls if "/v1/customers/" in call.request.url]
    assert [urlparse(request.url).path for request in retrieves] == ["/v1/customers/c1", "/v1/customers/c3"]
    assert {request.headers["Stripe-Version"] for request in retrieves} == {PINNED}
    assert "read 2 object(s) again in API version 2026-08-26.dahlia" in caplog.text


@responses.activate
def test_old_version_deletion_not_reread() -> None:
    events = [versioned("e1", "customer.deleted", NOW - timedelta(hours=1), old_shape("c1"), OLD_VERSION)]
    responses.add(responses.GET, f"{BASE}/v1/events", json=page(events), headers=date_header(NOW))

    messages = run_tap(tap_class(versioned_declaration()), CONFIG, state=state_at(NOW - timedelta(days=1)))

    [record] = records_of(messages, "customers")
    assert record["_sdc_deleted_at"] == (NOW - timedelta(hours=1)).isoformat()
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [(404, {"error": {"type": "invalid_request_error", "code": "resource_missing"}}), (200, {"id": "c1", "object": "customer", "deleted": True})],
    ids=["404", "deleted-flag"],
)
@responses.activate
def test_gone_object_becomes_tombstone(status: int, body: dict[str, t.Any]) -> None:
    moment = NOW - timedelta(hours=1)
    responses.add(responses.GET, f"{BASE}/v1/events", json=page([versioned("e1", "customer.updated", moment, old_shape("c1"), OLD_VERSION)]), headers=date_header(NOW))
    responses.add(responses.GET, f"{BASE}/v1/customers/c1", json=body, status=status)

    messages = run_tap(tap_class(versioned_declaration()), CONFIG, state=state_at(NOW - timedelta(days=1)))

    [record] = records_of(messages, "customers")
    assert (record["id"], record["email"], record["_sdc_deleted_at"]) == ("c1", None, moment.isoformat())
    assert bookmark_of(messages) == (NOW - timedelta(minutes=5)).isoformat()


@responses.activate
def test_gone_object_without_deletions_skipped(caplog: pytest.LogCaptureFixture) -> None:
    events = [
        versioned("e2", "customer.updated", NOW - timedelta(hours=1), old_shape("c1"), OLD_VERSION),
        versioned("e1", "customer.updated", NOW - timedelta(hours=2), customer("c2", "b@example.com"), PINNED),
    ]
    responses.add(responses.GET, f"{BASE}/v1/events", json=page(events), headers=date_header(NOW))
    responses.add(responses.GET, f"{BASE}/v1/customers/c1", json={"error": {"type": "invalid_request_error"}}, status=404)

    with caplog.at_level(logging.INFO):
        messages = run_tap(tap_class(versioned_declaration(deletions=False)), CONFIG, state=state_at(NOW - timedelta(days=1)))

    assert [record["id"] for record in records_of(messages, "customers")] == ["c2"]
    assert "1 were gone from a stream without deletions (skipped)" in caplog.text


@responses.activate
def test_retrieve_error_keeps_bookmark() -> None:
    bookmark = NOW - timedelta(days=1)
    responses.add(responses.GET, f"{BASE}/v1/events", json=page([versioned("e1", "customer.updated", NOW, old_shape("c1"), OLD_VERSION)]), headers=date_header(NOW))
    responses.add(responses.GET, f"{BASE}/v1/customers/c1", json={"error": {"type": "invalid_request_error"}}, status=403)

    tap = tap_class(versioned_declaration())(config=CONFIG, state=state_at(bookmark), parse_env_config=False)
    with pytest.raises(StreamsStoppedError, match=r"path /v1/customers/c1.*403|403.*path /v1/customers/c1"):
        tap.sync_all()

    assert tap.state["bookmarks"]["customers"]["replication_key_value"] == bookmark.isoformat()


# Bookmarks past the retention


@responses.activate
def test_expired_bookmark_full_refresh(caplog: pytest.LogCaptureFixture) -> None:
    responses.add(responses.GET, f"{BASE}/v1/events", json=page([]), headers=date_header(NOW))
    responses.add(responses.GET, f"{BASE}/v1/customers", json=page([customer("c2", "b@example.com"), customer("c1", "a@example.com")]), headers=date_header(NOW))

    with caplog.at_level(logging.WARNING):
        messages = run_tap(tap_class(), CONFIG, state=state_at(NOW - timedelta(days=29, hours=1)))

    assert [record["id"] for record in records_of(messages, "customers")] == ["c2", "c1"]
    assert bookmark_of(messages) == NOW.isoformat()
    assert "the bookmark is 29.0 days old" in caplog.text
    assert "reading the whole list again" in caplog.text


@responses.activate
def test_expired_bookmark_fail_keeps_bookmark() -> None:
    old = NOW - timedelta(days=40)
    responses.add(responses.GET, f"{BASE}/v1/events", json=page([event("e1", "customer.updated", NOW, customer("c1", "a@example.com"))]), headers=date_header(NOW))

    tap = tap_class()(config={**CONFIG, "expired_events": "fail"}, state=state_at(old), parse_env_config=False)
    with pytest.raises(StreamsStoppedError, match=r"40\.0 days old.*Set setting 'expired_events' to full_refresh"):
        tap.sync_all()

    assert tap.state["bookmarks"]["customers"]["replication_key_value"] == old.isoformat()
    assert len(responses.calls) == 1


@responses.activate
def test_recent_bookmark_not_expired() -> None:
    responses.add(responses.GET, f"{BASE}/v1/events", json=page([]), headers=date_header(NOW))

    messages = run_tap(tap_class(), {**CONFIG, "expired_events": "fail"}, state=state_at(NOW - timedelta(days=28)))

    assert records_of(messages, "customers") == []
    assert bookmark_of(messages) == (NOW - timedelta(minutes=5)).isoformat()


def test_expiry_uses_one_day_margin() -> None:
    assert not is_expired(NOW - timedelta(days=29), NOW, 30)
    assert is_expired(NOW - timedelta(days=29, seconds=1), NOW, 30)
    assert not is_expired(NOW - timedelta(days=300), NOW, None)


def test_server_time_from_date_header() -> None:
    response = requests.Response()
    response.headers["Date"] = "Fri, 20 Nov 2026 12:00:00 GMT"
    fallback = datetime(2000, 1, 1, tzinfo=UTC)

    assert server_time(response, fallback) == NOW
    response.headers["Date"] = "yesterday"
    assert server_time(response, fallback) == fallback


# Declaration checks


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"types": ["customer.created", "invoice.upcoming"]}, r"changes\.types\.1: 'invoice\.upcoming' events carry no object id"),
        ({"types": ["customer.*"]}, r"changes\.types\.0: 'customer\.\*' does not match"),
        ({"deleted_types": ["customer.removed"]}, r"changes\.deleted_types\.0: 'customer\.removed' is not listed under types"),
        ({"on_expired_bookmark": "{config.missing}"}, r"refers to setting 'missing', which is not declared"),
        ({"on_expired_bookmark": "skip"}, r"on_expired_bookmark: 'skip' does not match"),
        ({"retrieve": "/v1/customers/{id}"}, r"streams\.customers\.changes: retrieve and pinned_version go together"),
        ({"retrieve": "/v1/customers", "pinned_version": "v1"}, r"changes\.retrieve: '/v1/customers' does not match"),
        ({"retrieve": "/v1/customers/{id}", "pinned_version": "{config.version}"}, r"pinned_version: refers to setting 'version', which is not declared"),
    ],
)
def test_declaration_problems_named(change: dict[str, t.Any], problem: str) -> None:
    declaration = copy.deepcopy(DECLARATION)
    declaration["streams"]["customers"]["changes"].update(change)

    with pytest.raises(DeclarationError, match=problem):
        parse_declaration(declaration)


def test_changes_exclude_replication() -> None:
    declaration = copy.deepcopy(DECLARATION)
    declaration["streams"]["customers"]["replication"] = {"key": "created", "request_param": "created[gte]", "request_format": "epoch_seconds"}

    with pytest.raises(DeclarationError, match=r"streams\.customers\.changes: a stream with changes keeps its bookmark on _sdc_changed_at"):
        parse_declaration(declaration)


def test_unknown_expired_setting_value_rejected() -> None:
    declaration = copy.deepcopy(DECLARATION)
    declaration["settings"][-1].pop("pattern")

    with responses.RequestsMock() as mock, pytest.raises(ConfigValidationError) as raised:
        run_tap(tap_class(declaration), {**CONFIG, "expired_events": "ignore"}, state=state_at(NOW - timedelta(days=1)))

    assert "setting 'expired_events' must be one of full_refresh, fail" in raised.value.errors[0]
    assert len(mock.calls) == 0
