"""mapper-pii on STATE messages: bookmarks, partition contexts and progress markers never carry personal data."""

from __future__ import annotations

import typing as t

import pytest

from privacy.declarations import load_source_declaration
from taps.engine.fields import stream_schema
from tests.mapper.support import error_text, run_mapper

SCHEMA = {
    "type": "SCHEMA",
    "stream": "customers",
    "key_properties": ["id"],
    "schema": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "x-pii": "none"},
            "email": {"type": ["string", "null"], "x-pii": "email"},
            "updated": {"type": ["string", "null"], "format": "date-time", "x-pii": "none"},
            "account_id": {"type": ["string", "null"], "x-pii": "none"},
        },
    },
}


def state(bookmark: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"type": "STATE", "value": {"bookmarks": {"customers": bookmark}}}


def assert_stopped_without_state(run: t.Any, *values: str) -> str:
    """Assert the run stopped, wrote no STATE and quoted no value; return the error text."""
    text = error_text(run.error)
    assert [m for m in run.messages if m["type"] == "STATE"] == []
    for value in values:
        assert value not in text
        assert value not in run.text
    return text


def test_partition_bookmark_on_email_rejected() -> None:
    bookmark = {
        "partitions": [
            {
                "context": {"customer_email": "CTXLEAK@example.com"},
                "replication_key": "email",
                "replication_key_value": "STATELEAK@example.com",
            }
        ]
    }

    run = run_mapper([SCHEMA, state(bookmark)])

    text = assert_stopped_without_state(run, "CTXLEAK", "STATELEAK")
    assert "Stream 'customers': partition 0 of the bookmark is on field 'email', which the policy does not keep" in text


def test_partition_replication_key_rejected() -> None:
    bookmark = {"partitions": [{"context": {"account_id": "1"}, "replication_key": "updated"}, {"context": {"account_id": "2"}, "replication_key": "email", "replication_key_value": "jane@example.com"}]}

    run = run_mapper([SCHEMA, state(bookmark)])

    text = assert_stopped_without_state(run, "jane@example.com")
    assert "partition 1 of the bookmark is on field 'email'" in text


def test_progress_marker_replication_key_rejected() -> None:
    bookmark = {"progress_markers": {"Note": "Progress is not resumable if interrupted.", "replication_key": "email", "replication_key_value": "jane@example.com"}}

    run = run_mapper([SCHEMA, state(bookmark)])

    text = assert_stopped_without_state(run, "jane@example.com")
    assert "the progress marker of the bookmark is on field 'email'" in text


def test_partition_progress_marker_rejected() -> None:
    bookmark = {"partitions": [{"context": {"account_id": "1"}, "progress_markers": {"replication_key": "email", "replication_key_value": "jane@example.com"}}]}

    run = run_mapper([SCHEMA, state(bookmark)])

    text = assert_stopped_without_state(run, "jane@example.com")
    assert "the progress marker of partition 0 of the bookmark is on field 'email'" in text


def test_context_key_on_hashed_field_rejected() -> None:
    bookmark = {"partitions": [{"context": {"email": "opaque-partition"}, "replication_key": "updated"}]}

    run = run_mapper([SCHEMA, state(bookmark)])

    text = assert_stopped_without_state(run, "opaque-partition")
    assert "the context of partition 0 of the bookmark has key 'email', a field the policy maps with hmac" in text


@pytest.mark.parametrize(
    ("value", "looks_like"),
    [
        ("CTXLEAK@example.com", "an e-mail address"),
        ("+1 415 555 0123", "a phone number"),
        ("203.0.113.77", "an IP address"),
        ("4111 1111 1111 1111", "a card number"),
    ],
)
def test_personal_context_value_rejected(value: str, looks_like: str) -> None:
    bookmark = {"partitions": [{"context": {"segment": {"owner": [value]}}, "replication_key": "updated"}]}

    run = run_mapper([SCHEMA, state(bookmark)])

    text = assert_stopped_without_state(run, value)
    assert f"the value of context key 'segment' in partition 0 of the bookmark looks like {looks_like}" in text


def test_personal_context_of_unmapped_stream_rejected() -> None:
    message = {"type": "STATE", "value": {"bookmarks": {"orders": {"partitions": [{"context": {"buyer": "jane@example.com"}}]}}}}

    run = run_mapper([SCHEMA, message])

    text = assert_stopped_without_state(run, "jane@example.com")
    assert "Stream 'orders': the value of context key 'buyer'" in text


@pytest.mark.parametrize(
    ("source", "stream", "context"),
    [
        ("facebook", "ads_insights", {"account_id": "1234567890"}),
        ("google_ads", "customer_daily_metrics", {"customer_id": "1234567890"}),
        ("google_analytics", "traffic_daily", {"property_id": "123456789"}),
        ("facebook", "campaigns", {"account_id": "1234567890"}),
    ],
)
def test_tap_partition_states_pass(source: str, stream: str, context: dict[str, str]) -> None:
    declaration = load_source_declaration(source)
    assert declaration is not None
    spec = next(spec for spec in declaration.spec.streams if spec.name == stream)
    schema = {"type": "SCHEMA", "stream": stream, "schema": stream_schema(spec), "key_properties": list(spec.primary_key)}
    key = spec.replication.key if spec.replication is not None else None
    partition = {"context": context, "replication_key": key, "replication_key_value": "2026-11-01"}
    value = {"bookmarks": {stream: {"partitions": [partition], "progress_markers": {"replication_key": key}}}}

    run = run_mapper([schema, {"type": "STATE", "value": value}])

    assert run.error is None
    assert [m["value"] for m in run.messages if m["type"] == "STATE"] == [value]
