"""The target refuses streams that did not pass through mapper-pii for its tenant."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from targets.warehouse.arrow_schema import StreamLayout, layout_from_schema
from targets.warehouse.errors import UnmappedPersonalDataError
from targets.warehouse.pii_guard import _all_pseudonyms, check_mapped_values

from .support import (
    KEY_ID_OF_HOME,
    TENANT,
    query,
    record_message,
    run_target,
    run_target_expecting_error,
)

RAW_SCHEMA = {
    "type": "SCHEMA",
    "stream": "customers",
    "key_properties": ["id"],
    "schema": {
        "type": "object",
        "properties": {"id": {"type": "string", "x-pii": "identifier"}, "email": {"type": ["string", "null"], "x-pii": "email"}},
    },
}
RAW_RECORD = record_message("customers", {"id": "cus_1", "email": "ada@example.com"})


def mapped_schema(tenant: str) -> dict:
    schema = {
        "type": "object",
        "x-pii-tenant": tenant,
        "x-pii-key-id": KEY_ID_OF_HOME,
        "properties": {
            "id": {"type": "string", "x-pii": "identifier", "x-pii-applied": "hmac"},
            "email": {"type": ["string", "null"], "x-pii": "email", "x-pii-applied": "hmac"},
        },
    }
    return {**RAW_SCHEMA, "schema": schema}


def test_unmapped_stream_rejected(home: Path) -> None:
    error = run_target_expecting_error(home, [RAW_SCHEMA, RAW_RECORD])

    assert isinstance(error, UnmappedPersonalDataError)
    assert "field(s) email, id did not pass through mapper-pii" in str(error)
    assert "ada@example.com" not in str(error)


def test_other_tenant_pseudonyms_rejected(home: Path) -> None:
    error = run_target_expecting_error(home, [mapped_schema("globex"), record_message("customers", {"id": "h1", "email": "h2"})])

    assert isinstance(error, UnmappedPersonalDataError)
    assert f"for tenant 'globex', but this target loads tenant '{TENANT}'" in str(error)


ID_PSEUDONYM = "1" * 64
EMAIL_PSEUDONYM = "a" * 64


def test_mapped_stream_loads(home: Path) -> None:
    run_target(home, [mapped_schema(TENANT), record_message("customers", {"id": ID_PSEUDONYM, "email": EMAIL_PSEUDONYM})])

    assert query(home, "SELECT id, email FROM stripe.customers") == [(ID_PSEUDONYM, EMAIL_PSEUDONYM)]


def test_catalog_records_classes_and_actions(home: Path) -> None:
    run_target(home, [mapped_schema(TENANT), record_message("customers", {"id": ID_PSEUDONYM, "email": None})])

    rows = query(home, "SELECT column_name, pii_class, pii_action FROM _spendlake.columns WHERE stream = 'customers' ORDER BY 1")
    assert rows == [("email", "email", "hmac"), ("id", "identifier", "hmac")]


def test_raw_value_in_hmac_column_rejected(home: Path) -> None:
    first = record_message("customers", {"id": ID_PSEUDONYM, "email": EMAIL_PSEUDONYM})
    raw = record_message("customers", {"id": "2" * 64, "email": "ada@example.com"})

    error = run_target_expecting_error(home, [mapped_schema(TENANT), first, raw])

    assert isinstance(error, UnmappedPersonalDataError)
    assert "field 'email': 1 value(s) of the batch (first at row 1) are not hmac output" in str(error)
    assert "ada@example.com" not in str(error)
    assert not list((home / "warehouse").rglob("*.parquet"))


def test_raw_value_in_encrypt_column_rejected(home: Path) -> None:
    schema = mapped_schema(TENANT)
    schema["schema"]["properties"]["email"]["x-pii-applied"] = "encrypt"

    error = run_target_expecting_error(home, [schema, record_message("customers", {"id": ID_PSEUDONYM, "email": "ada@example.com"})])

    assert isinstance(error, UnmappedPersonalDataError)
    assert "are not encrypt output" in str(error)
    assert not list((home / "warehouse").rglob("*.parquet"))


def test_field_marked_drop_rejected(home: Path) -> None:
    schema = mapped_schema(TENANT)
    schema["schema"]["properties"]["name"] = {"type": "string", "x-pii": "name", "x-pii-applied": "drop"}

    error = run_target_expecting_error(home, [schema])

    assert isinstance(error, UnmappedPersonalDataError)
    assert "field 'name' is marked x-pii-applied=drop but is still in the SCHEMA" in str(error)


def test_kept_secret_rejected(home: Path) -> None:
    schema = mapped_schema(TENANT)
    schema["schema"]["properties"]["invoice_pdf"] = {"type": "string", "x-pii": "secret", "x-pii-applied": "keep"}

    error = run_target_expecting_error(home, [schema])

    assert isinstance(error, UnmappedPersonalDataError)
    assert "field 'invoice_pdf' is classed secret" in str(error)


def test_guard_can_be_turned_off(home: Path) -> None:
    run_target(home, [RAW_SCHEMA, record_message("customers", {"id": "cus_1", "email": None})], require_pii_mapping=False)

    assert query(home, "SELECT id FROM stripe.customers") == [("cus_1",)]


def test_missing_tenant_mark_rejected(home: Path) -> None:
    schema = mapped_schema(TENANT)
    schema["schema"].pop("x-pii-tenant")

    error = run_target_expecting_error(home, [schema])

    assert isinstance(error, UnmappedPersonalDataError)
    assert "for tenant None" in str(error)


def test_other_key_pseudonyms_rejected(home: Path) -> None:
    schema = mapped_schema(TENANT)
    schema["schema"]["x-pii-key-id"] = "0123456789abcdef"

    error = run_target_expecting_error(home, [schema])

    assert isinstance(error, UnmappedPersonalDataError)
    assert "made the pseudonyms with a different key" in str(error)


def test_record_reshaping_settings_rejected(home: Path) -> None:
    from singer_sdk.exceptions import ConfigValidationError

    from targets.warehouse import TargetWarehouse

    from .support import target_config

    with pytest.raises(ConfigValidationError) as raised:
        TargetWarehouse(config=target_config(home, add_record_metadata=True, stream_maps={"a": {"__alias__": "b"}}))
    assert any("stream_maps, add_record_metadata cannot be used" in error for error in raised.value.errors)


def test_unknown_action_mark_rejected(home: Path) -> None:
    schema = mapped_schema(TENANT)
    schema["schema"]["properties"]["email"]["x-pii-applied"] = "HMAC"

    error = run_target_expecting_error(home, [schema])

    assert isinstance(error, UnmappedPersonalDataError)
    assert "field 'email' carries the unknown mark x-pii-applied='HMAC'" in str(error)


@pytest.mark.parametrize(
    ("action", "raw"),
    [("truncate_ip", "203.0.113.77"), ("generalize", "SW1A 1AA"), ("redact", "call ada@example.com today")],
)
def test_raw_value_under_forged_mark_rejected(home: Path, action: str, raw: str) -> None:
    schema = mapped_schema(TENANT)
    schema["schema"]["properties"]["note"] = {"type": ["string", "null"], "x-pii": "free_text", "x-pii-applied": action}

    error = run_target_expecting_error(home, [schema, record_message("customers", {"id": ID_PSEUDONYM, "note": raw})])

    assert isinstance(error, UnmappedPersonalDataError)
    assert f"field 'note': 1 value(s) of the batch (first at row 0) are not {action} output" in str(error)
    assert raw not in str(error)
    assert not list((home / "warehouse").rglob("*.parquet"))


@pytest.mark.parametrize(
    ("action", "mapped"),
    [("truncate_ip", "203.0.113.0"), ("truncate_ip", "2001:db8:abcd::"), ("generalize", "SW1A"), ("redact", "call [email] today")],
)
def test_mapped_value_under_mark_loads(home: Path, action: str, mapped: str) -> None:
    schema = mapped_schema(TENANT)
    schema["schema"]["properties"]["note"] = {"type": ["string", "null"], "x-pii": "free_text", "x-pii-applied": action}

    run_target(home, [schema, record_message("customers", {"id": ID_PSEUDONYM, "note": mapped})])

    assert query(home, "SELECT note FROM stripe.customers") == [(mapped,)]


def _hmac_layout() -> StreamLayout:
    schema = mapped_schema(TENANT)["schema"]
    return layout_from_schema("customers", schema, ["id"])


def _pseudonym_table(email_chunks: list[pa.Array]) -> pa.Table:
    emails = pa.chunked_array(email_chunks, pa.string())
    ids = pa.array([f"{row:064x}" for row in range(len(emails))], pa.string())
    return pa.table({"id": ids, "email": emails})


def test_pseudonym_check_accepts_digests_and_nulls() -> None:
    table = _pseudonym_table([pa.array([EMAIL_PSEUDONYM, None, "0123456789abcdef" * 4])])

    check_mapped_values(_hmac_layout(), table)


@pytest.mark.parametrize(
    "raw",
    ["A" * 64, "g" * 64, "a" * 63, "a" * 65, "é" * 32, "a" * 63 + "\n"],
    ids=["upper-case", "not-hex", "short", "long", "multi-byte", "newline"],
)
def test_pseudonym_check_rejects_other_text(raw: str) -> None:
    table = _pseudonym_table([pa.array([EMAIL_PSEUDONYM, None, raw, EMAIL_PSEUDONYM])])

    with pytest.raises(UnmappedPersonalDataError, match=r"field 'email': 1 value\(s\) of the batch \(first at row 2\)"):
        check_mapped_values(_hmac_layout(), table)


def test_pseudonym_check_reads_only_slices() -> None:
    whole = pa.array(["x" * 64, EMAIL_PSEUDONYM, EMAIL_PSEUDONYM, "y" * 64], pa.string())

    check_mapped_values(_hmac_layout(), _pseudonym_table([whole.slice(1, 2), whole.slice(1, 1)]))
    # The bulk test alone accepts the slices: it never reads the rows outside them.
    assert _all_pseudonyms(pa.chunked_array([whole.slice(1, 2), whole.slice(1, 1)]))
    assert not _all_pseudonyms(pa.chunked_array([whole.slice(2, 2)]))
    with pytest.raises(UnmappedPersonalDataError, match=r"first at row 3"):
        check_mapped_values(_hmac_layout(), _pseudonym_table([whole.slice(1, 2), whole.slice(2, 2)]))
