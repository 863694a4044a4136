"""`spendlake privacy audience-export`: platform hashes of encrypted e-mails and phones, computed at export only."""

from __future__ import annotations

import csv
import hashlib
import io
import stat
import typing as t

import phonenumbers

from privacy.audit import read_audit_events
from tests.privacy.gdpr_support import (
    TENANT,
    LoadedTenant,
    customer_with_charges,
    file_contents,
    loaded_template,  # noqa: F401 - fixture
    loaded_tenant,  # noqa: F401 - fixture
    query,
)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def e164(phone: str) -> str:
    return phonenumbers.format_number(phonenumbers.parse(phone, "US"), phonenumbers.PhoneNumberFormat.E164)


def expected_meta_rows(customers: t.Iterable[dict[str, t.Any]]) -> set[tuple[str, str]]:
    """Meta: e-mail trimmed and lower-cased; phone as digits with country code and no '+'."""
    rows = set()
    for customer in customers:
        email = sha256(customer["email"].strip().lower()) if customer["email"] else ""
        phone = sha256(e164(customer["phone"]).lstrip("+")) if customer["phone"] else ""
        if email or phone:
            rows.add((email, phone))
    return rows


def csv_rows(text: str) -> tuple[list[str], set[tuple[str, ...]]]:
    header, *rows = list(csv.reader(io.StringIO(text)))
    return header, {tuple(row) for row in rows}


def test_meta_audience_hashes_customers(loaded_tenant: LoadedTenant) -> None:
    result = loaded_tenant.cli("audience-export", "--platform", "meta", "--stream", "stripe.customers")

    assert result.exit_code == 0, result.output
    header, rows = csv_rows(result.stdout)
    assert header == ["email", "phone"]
    assert rows == expected_meta_rows(loaded_tenant.world.customers)
    assert f"Wrote {len(rows)} people from stripe.customers for meta" in result.stderr


def test_google_audience_uses_e164_phones(loaded_tenant: LoadedTenant) -> None:
    customers = [customer for customer in loaded_tenant.world.customers if customer["phone"]]

    result = loaded_tenant.cli("audience-export", "--platform", "google", "--stream", "stripe.customers")

    assert result.exit_code == 0, result.output
    header, rows = csv_rows(result.stdout)
    assert header == ["Email", "Phone"]
    phones = {phone for _email, phone in rows}
    assert {sha256(e164(customer["phone"])) for customer in customers} <= phones


def test_audience_skips_erased_subject(loaded_tenant: LoadedTenant) -> None:
    customer = customer_with_charges(loaded_tenant.world)
    erased = loaded_tenant.cli("erase", "--email", customer["email"], "--yes")
    assert erased.exit_code == 0, erased.output

    result = loaded_tenant.cli("audience-export", "--platform", "meta", "--stream", "stripe.customers")

    assert result.exit_code == 0, result.output
    _header, rows = csv_rows(result.stdout)
    assert sha256(customer["email"]) not in {email for email, _phone in rows}
    others = [item for item in loaded_tenant.world.customers if item["id"] != customer["id"]]
    assert rows == expected_meta_rows(others)


def test_audience_hashes_never_stored(loaded_tenant: LoadedTenant) -> None:
    home = loaded_tenant.home
    out = home.parent / "audience.csv"

    result = loaded_tenant.cli("audience-export", "--platform", "meta", "--stream", "stripe.customers", "--out", str(out))

    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    _header, rows = csv_rows(out.read_text())
    hashes = {value for row in rows for value in row if value}
    assert len(hashes) > 100
    stored = {value for row in query(home, "SELECT id, email, phone, shipping_phone FROM stripe.customers") for value in row}
    assert hashes.isdisjoint(stored)
    contents = b"".join(file_contents(home).values())
    assert [value for value in hashes if value.encode() in contents] == []


def test_audience_without_encrypted_column_names_fix(loaded_tenant: LoadedTenant) -> None:
    result = loaded_tenant.cli("audience-export", "--platform", "meta", "--stream", "stripe.invoices")

    assert result.exit_code == 1
    assert "Stream stripe.invoices has no encrypted e-mail or phone column" in result.output
    assert "customer_email (email, stored with hmac)" in result.output
    assert "`streams: {stripe.invoices: {fields: {customer_email: encrypt}}}`" in result.output


def test_audience_unknown_stream_named(loaded_tenant: LoadedTenant) -> None:
    missing = loaded_tenant.cli("audience-export", "--platform", "meta", "--stream", "stripe.refunds")
    malformed = loaded_tenant.cli("audience-export", "--platform", "meta", "--stream", "customers")

    assert missing.exit_code == 1
    assert "Stream stripe.refunds has no table" in missing.output
    assert malformed.exit_code == 1
    assert "not of the form SOURCE.STREAM" in malformed.output


def test_audience_export_audited_without_values(loaded_tenant: LoadedTenant) -> None:
    result = loaded_tenant.cli("audience-export", "--platform", "google", "--stream", "stripe.charges")

    assert result.exit_code == 0, result.output
    event = read_audit_events(loaded_tenant.home, TENANT)[-1]
    assert event["action"] == "privacy.audience_export"
    assert event["details"]["email_columns"] == ["billing_email"]
    assert event["details"]["phone_columns"] == ["billing_phone"]
    assert event["details"]["rows_written"] == len(csv_rows(result.stdout)[1])
    log_text = (loaded_tenant.home / "privacy" / TENANT / "audit.jsonl").read_text()
    _header, rows = csv_rows(result.stdout)
    assert [row for row in rows if row[0] and row[0] in log_text] == []
