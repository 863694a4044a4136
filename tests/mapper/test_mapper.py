"""mapper-pii on real Singer messages: hashing, dropping, schema rewrite, failing closed."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from singer_sdk.exceptions import ConfigValidationError

from mappers.pii import PIIMapper
from mappers.pii.plan import MappingError
from privacy.keys import load_tenant_keys
from privacy.pseudonyms import Pseudonymizer
from tests.singer_run import captured_stdout, parse_messages

SCHEMA = {
    "type": "SCHEMA",
    "stream": "customers",
    "key_properties": ["id"],
    "bookmark_properties": ["created"],
    "schema": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "x-pii": "identifier"},
            "created": {"type": ["string", "null"], "format": "date-time", "x-pii": "none"},
            "email": {"type": ["string", "null"], "x-pii": "email"},
            "phone": {"type": ["string", "null"], "x-pii": "phone"},
            "name": {"type": ["string", "null"], "x-pii": "name"},
            "street": {"type": ["string", "null"], "x-pii": "address"},
            "ip": {"type": ["string", "null"], "x-pii": "ip"},
            "note": {"type": ["string", "null"], "x-pii": "free_text"},
            "currency": {"type": ["string", "null"], "x-pii": "none"},
        },
        "required": ["id"],
    },
}
RECORD = {
    "type": "RECORD",
    "stream": "customers",
    "time_extracted": "2026-11-02T08:00:00.123456+00:00",
    "record": {
        "id": "cus_123",
        "created": "2026-11-01T10:00:00+00:00",
        "email": "Jane.Roe@Example.com",
        "phone": "+1 415 555 0123",
        "name": "Jane Roe",
        "street": "1 Canary Street",
        "ip": "192.0.2.7",
        "note": "call Jane",
        "currency": "usd",
    },
}
STATE = {"type": "STATE", "value": {"bookmarks": {"customers": {"replication_key_value": "2026-11-01T10:00:00+00:00"}}}}


def run_mapper(lines: list[dict[str, t.Any]], config: dict[str, t.Any] | None = None) -> list[dict[str, t.Any]]:
    text = "".join(json.dumps(line) + "\n" for line in lines)
    with captured_stdout() as raw:
        mapper = PIIMapper(config={"tenant": "acme", **(config or {})})
        mapper.listen(io.StringIO(text))
        sys.stdout.flush()
    return parse_messages(raw.getvalue())


def test_record_hashed_and_dropped_per_class(spendlake_env: Path) -> None:
    out = run_mapper([SCHEMA, RECORD, STATE])

    record = next(m for m in out if m["type"] == "RECORD")["record"]
    pseudonymizer = Pseudonymizer(load_tenant_keys(spendlake_env, "acme").hmac_key)
    assert record == {
        "id": pseudonymizer.pseudonym("identifier", "cus_123"),
        "created": "2026-11-01T10:00:00+00:00",
        "email": pseudonymizer.pseudonym("email", "jane.roe@example.com"),
        "phone": pseudonymizer.pseudonym("phone", "+14155550123"),
        "currency": "usd",
    }


def test_schema_rewritten_to_what_is_emitted() -> None:
    out = run_mapper([SCHEMA, RECORD])

    schema = next(m for m in out if m["type"] == "SCHEMA")
    properties = schema["schema"]["properties"]
    assert sorted(properties) == ["created", "currency", "email", "id", "phone"]
    assert properties["email"] == {"type": ["string", "null"], "x-pii": "email", "x-pii-applied": "hmac"}
    assert properties["id"]["type"] == "string"
    assert properties["currency"]["x-pii-applied"] == "keep"
    assert schema["key_properties"] == ["id"]
    assert schema["schema"]["x-pii-tenant"] == "acme"
    assert schema["bookmark_properties"] == ["created"]


def test_time_extracted_kept() -> None:
    out = run_mapper([SCHEMA, RECORD])

    assert next(m for m in out if m["type"] == "RECORD")["time_extracted"] == "2026-11-02T08:00:00.123456Z"


def test_state_passes_through_after_records() -> None:
    out = run_mapper([SCHEMA, RECORD, STATE])

    assert [m["type"] for m in out] == ["SCHEMA", "RECORD", "STATE"]
    assert out[-1]["value"] == STATE["value"]


def test_no_personal_value_in_output() -> None:
    raw = json.dumps(run_mapper([SCHEMA, RECORD]))

    # The phone in its written and E.164 forms: a short digit run such as "555" also occurs in hash hex by chance.
    for value in ("Jane", "Roe", "Canary", "415 555 0123", "4155550123", "192.0.2.7", "cus_123", "call"):
        assert value not in raw


def test_record_before_schema_stops_run() -> None:
    with pytest.raises(MappingError, match="RECORD arrived before its SCHEMA"):
        run_mapper([RECORD])


def test_unknown_class_stops_run() -> None:
    schema = json.loads(json.dumps(SCHEMA))
    schema["schema"]["properties"]["email"]["x-pii"] = "mail"

    with pytest.raises(MappingError, match="field 'email' has an unknown x-pii class 'mail'"):
        run_mapper([schema])


def test_unclassified_field_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    schema = json.loads(json.dumps(SCHEMA))
    schema["schema"]["properties"]["mystery"] = {"type": ["string", "null"]}
    record = {**RECORD, "record": {**RECORD["record"], "mystery": "jane secret"}}

    with caplog.at_level(logging.INFO):
        out = run_mapper([schema, record])

    assert "mystery" not in next(m for m in out if m["type"] == "RECORD")["record"]
    assert "1 field(s) without an x-pii class, mapped by the strict mode: mystery (drop)" in caplog.text
    assert "jane secret" not in caplog.text


def test_unclassified_fails_in_strict_mode() -> None:
    schema = json.loads(json.dumps(SCHEMA))
    schema["schema"]["properties"]["mystery"] = {"type": "string"}

    with pytest.raises(MappingError, match="field 'mystery' has no x-pii class"):
        run_mapper([schema], {"unclassified": "fail"})


def test_field_missing_from_schema_never_passes() -> None:
    record = {**RECORD, "record": {**RECORD["record"], "surprise": "jane@example.org"}}

    out = run_mapper([SCHEMA, record])

    assert "surprise" not in next(m for m in out if m["type"] == "RECORD")["record"]
    with pytest.raises(MappingError, match="not in its SCHEMA: surprise"):
        run_mapper([SCHEMA, record], {"unclassified": "fail"})


def test_dropping_key_property_rejected() -> None:
    with pytest.raises(MappingError, match="drops key property id"):
        run_mapper([SCHEMA], {"policy": {"identifier": "drop"}})


def test_policy_override_keeps_class() -> None:
    out = run_mapper([SCHEMA, RECORD], {"policy": {"address": "keep"}})

    assert next(m for m in out if m["type"] == "RECORD")["record"]["street"] == "1 Canary Street"


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        pytest.param({"secret": "keep"}, "'secret' values may only be dropped, never 'keep'", id="secret-keep"),
        pytest.param({"email": "truncate_ip"}, "action 'truncate_ip' does not apply to class 'email'", id="action-of-other-class"),
        pytest.param({"address": "generalize"}, "'generalize' applies to an address only as a field rule", id="class-generalize-address"),
        pytest.param({"email": "rot13"}, "unknown action 'rot13'", id="unknown-action"),
    ],
)
def test_invalid_policy_rejected_at_start(policy: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigValidationError) as raised:
        PIIMapper(config={"tenant": "acme", "policy": policy})

    assert len(raised.value.errors) == 1
    assert message in raised.value.errors[0]


def test_missing_master_key_exits_cleanly(spendlake_env: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mappers.pii.mapper", "--config", "ENV"],
        input="",
        capture_output=True,
        text=True,
        env={"MAPPER_PII_TENANT": "acme", "SPENDLAKE_HOME": str(spendlake_env), "PATH": ""},
        check=False,
    )

    assert result.returncode == 1
    assert "No master key: set" in result.stderr
    assert "SPENDLAKE_MASTER_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_batch_message_rejected() -> None:
    batch = {"type": "BATCH", "stream": "customers", "encoding": {"format": "jsonl"}, "manifest": ["file:///tmp/x"]}

    with pytest.raises(MappingError, match="BATCH messages cannot be mapped"):
        run_mapper([SCHEMA, batch])


def test_invalid_json_line_error_hides_content(spendlake_env: Path) -> None:
    text = json.dumps(SCHEMA) + '\n{"type": "RECORD", "record": {"email": "jane@example.com"\n'

    result = subprocess.run(
        [sys.executable, "-m", "mappers.pii.mapper", "--config", "ENV"],
        input=text,
        capture_output=True,
        text=True,
        env={"MAPPER_PII_TENANT": "acme", "SPENDLAKE_HOME": str(spendlake_env), **_master_env()},
        check=False,
    )

    assert result.returncode != 0
    assert "Input line 2 is not valid JSON" in result.stderr
    assert "jane@example.com" not in result.stderr


def _master_env() -> dict[str, str]:
    import os

    return {"SPENDLAKE_MASTER_KEY": os.environ["SPENDLAKE_MASTER_KEY"], "PATH": os.environ.get("PATH", "")}


def test_lone_surrogate_survives_mapping() -> None:
    schema = json.loads(json.dumps(SCHEMA))
    line = '{"type": "RECORD", "stream": "customers", "record": {"id": "cus_\\ud800", "currency": "e\\ud800"}}\n'
    text = json.dumps(schema) + "\n" + line

    with captured_stdout() as raw:
        PIIMapper(config={"tenant": "acme"}).listen(io.StringIO(text))
        sys.stdout.flush()
    record = parse_messages(raw.getvalue())[-1]["record"]

    assert record["currency"] == "e\ufffd"
    assert len(record["id"]) == 64


def test_record_not_object_rejected() -> None:
    record = {"type": "RECORD", "stream": "customers", "record": "jane@example.com"}

    with pytest.raises(MappingError, match="'record' is a str, not a JSON object") as raised:
        run_mapper([SCHEMA, record])
    assert "jane@example.com" not in str(raised.value)


def test_kept_object_with_personal_subfield_rejected() -> None:
    schema = json.loads(json.dumps(SCHEMA))
    schema["schema"]["properties"]["billing"] = {
        "type": ["object", "null"],
        "x-pii": "none",
        "properties": {"email": {"type": "string", "x-pii": "email"}, "country": {"type": "string", "x-pii": "none"}},
    }

    with pytest.raises(MappingError, match="field 'billing' is kept whole but contains sub-fields classed email"):
        run_mapper([schema])


@pytest.mark.parametrize(
    "nested",
    [
        {"anyOf": [{"type": "object", "properties": {"email": {"type": "string", "x-pii": "email"}}}, {"type": "null"}]},
        {"oneOf": [{"type": "null"}, {"type": "array", "items": {"type": "object", "properties": {"email": {"x-pii": "email"}}}}]},
        {"allOf": [{"type": "object", "properties": {"email": {"type": "string", "x-pii": "email"}}}]},
        {"type": "object", "additionalProperties": {"type": "string", "x-pii": "email"}},
        {"type": "object", "patternProperties": {"^mail": {"type": "string", "x-pii": "email"}}},
        {"type": "array", "prefixItems": [{"type": "string", "x-pii": "email"}]},
        {"type": "object", "unevaluatedProperties": {"type": "string", "x-pii": "email"}},
        {"type": "object", "propertyNames": {"x-pii": "email"}},
        {"type": "object", "dependencies": {"a": {"properties": {"email": {"x-pii": "email"}}}}},
        {"type": "string", "contentSchema": {"type": "object", "properties": {"email": {"x-pii": "email"}}}},
    ],
)
def test_personal_subfield_in_any_keyword_rejected(nested: dict) -> None:
    schema = json.loads(json.dumps(SCHEMA))
    schema["schema"]["properties"]["billing"] = {"x-pii": "none", **nested}

    with pytest.raises(MappingError, match="field 'billing' is kept whole but contains sub-fields classed email"):
        run_mapper([schema])


@pytest.mark.parametrize("keyword", ["$ref", "$dynamicRef"])
def test_kept_field_with_reference_rejected(keyword: str) -> None:
    schema = json.loads(json.dumps(SCHEMA))
    schema["schema"]["$defs"] = {"contact": {"type": "object", "properties": {"mail": {"type": "string", "x-pii": "email"}}}}
    schema["schema"]["properties"]["billing"] = {"x-pii": "none", "anyOf": [{keyword: "#/$defs/contact"}, {"type": "null"}]}

    with pytest.raises(MappingError, match=f"field 'billing' is kept whole but its schema refers elsewhere \\(\\{keyword}\\)"):
        run_mapper([schema])


def test_bookmark_on_hashed_field_rejected() -> None:
    state = {"type": "STATE", "value": {"bookmarks": {"customers": {"replication_key": "email", "replication_key_value": "jane@example.com"}}}}

    with pytest.raises(MappingError, match="the bookmark is on field 'email', which the policy does not keep") as raised:
        run_mapper([SCHEMA, RECORD, state])
    assert "jane@example.com" not in str(raised.value)


def test_schema_carries_key_fingerprint(spendlake_env: Path) -> None:
    out = run_mapper([SCHEMA])

    assert out[0]["schema"]["x-pii-key-id"] == load_tenant_keys(spendlake_env, "acme").pseudonym_key_id
    assert len(out[0]["schema"]["x-pii-key-id"]) == 16
