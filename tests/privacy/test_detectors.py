"""Detectors for fields without a PII class: tables of field names and of values."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.detectors import classify_field_name, detect_value_class
from privacy.policy import PII_CLASSES

PERSONAL_NAMES = {
    "email": ["email", "e_mail", "eMail", "customer_email", "email_address", "EmailAddress", "billing-email"],
    "phone": [
        "phone",
        "telephone",
        "phone_number",
        "mobile",
        "customerMobile",
        "mobile_number",
        "cell_no",
        "billing_phone",
        "fax",
    ],
    "name": [
        "first_name",
        "last_name",
        "full_name",
        "customer_name",
        "name",
        "firstName",
        "surname",
        "display_name",
        "name_on_card",
        "billing_name",
        "username",
    ],
    "address": [
        "address",
        "street",
        "street_address",
        "shipping_address_line1",
        "address_line_2",
        "postcode",
        "zip",
        "zipCode",
        "billing_address_postal_code",
        "billing_city",
        "shipping_address_city",
        "po_box",
    ],
    "ip": ["ip", "ip_address", "remote_ip", "remoteIP", "clientIpAddress", "IPv6", "remote_addr"],
    "date_of_birth": ["dob", "date_of_birth", "birthDate", "birthday", "birth_year"],
    "secret": [
        "password",
        "client_secret",
        "api_key",
        "apiKey",
        "access_token",
        "card_number",
        "cardNumber",
        "cvc",
        "cvv",
        "token",
    ],
    "identifier": [
        "customer_id",
        "user_id",
        "client_id",
        "customerId",
        "user_pseudo_id",
        "customer",
        "device_id",
        "gclid",
        "fbclid",
        "mac_address",
    ],
    "free_text": ["note", "notes", "comment", "message", "description", "customer_note", "campaign_description"],
}

NON_PERSONAL_NAMES = [
    "campaign_name", "ad_name", "adset_name", "ad_group_name", "account_name", "product_name", "item_name",
    "event_name", "campaignName", "city", "country", "region", "zipper", "gzip_size", "impressions", "clicks",
    "spend", "cost_micros", "currency", "date_start", "account_id", "campaign_id", "order_id", "created_at",
    "mobile_app_installs", "is_mobile", "device_category", "session_source", "status", "amount", "description_id",
    "shipping", "tipping_point", "",
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "expected"), [(name, pii_class) for pii_class, names in PERSONAL_NAMES.items() for name in names]
)
def test_personal_field_names(name: str, expected: str) -> None:
    assert classify_field_name(name) == expected


@pytest.mark.parametrize("name", NON_PERSONAL_NAMES)
def test_non_personal_field_names(name: str) -> None:
    assert classify_field_name(name) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("jane.doe@example.com", "email"),
        ("  Jane.Doe+promo@Example.CO.UK ", "email"),
        ("203.0.113.77", "ip"),
        ("2001:db8::1", "ip"),
        ("4111 1111 1111 1111", "secret"),
        ("4111-1111-1111-1111", "secret"),
        ("378282246310005", "secret"),
        ("+1 415-555-0123", "phone"),
        ("(415) 555-0123", "phone"),
        ("415.555.0123", "phone"),
        ("+44 20 7946 0958", "phone"),
        ("+14155550123", "phone"),
    ],
)
def test_personal_values(value: str, expected: str) -> None:
    assert detect_value_class(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None, 42, 4155550123, 4111111111111111, True, 12.5, ["jane@example.com"], "", "   ",
        "Summer Sale 2024", "2024-01-15", "2024-01-15T10:30:00Z", "1234.56", "100000.00", "4155550123",
        "4111 1111 1111 1112", "cus_ABC123", "jane@localhost", "1.2.3", "v1.2.3.4", "EUR",
        "ch_3MmlLrLkdIwHu7ix0snN0B15", "555-0123", "+1 23",
    ],
)  # fmt: skip
def test_non_personal_values(value: t.Any) -> None:
    assert detect_value_class(value) is None


def test_phone_region_for_national_format() -> None:
    assert detect_value_class("020 7946 0958", default_region="GB") == "phone"
    assert detect_value_class("020 7946 0958", default_region="US") is None


def test_unknown_region_rejected() -> None:
    with pytest.raises(ValueError, match="Unknown phone region 'UK'"):
        detect_value_class("020 7946 0958", default_region="UK")


@settings(deadline=None)
@given(st.text(st.characters(exclude_categories=())))  # surrogates included
def test_detectors_never_raise(text: str) -> None:
    assert classify_field_name(text) in (None, *PII_CLASSES)
    assert detect_value_class(text) in (None, "email", "phone", "ip", "secret")


def first_record(payload: t.Any) -> dict[str, t.Any]:
    records = payload.get("data") or payload.get("items")
    assert records, "fixture holds no records"
    return records[0]


def test_public_insights_fields_are_not_personal(fixtures_dir: Path) -> None:
    record = first_record(
        json.loads((fixtures_dir / "facebook" / "airbyte_ads_insights_action_product_id.json").read_text())
    )

    classified = {name: classify_field_name(name) for name in record}
    assert {name: pii_class for name, pii_class in classified.items() if pii_class is not None} == {}
    assert "campaign_name" in classified


def test_public_customer_fields_are_personal(fixtures_dir: Path) -> None:
    stripe = first_record(json.loads((fixtures_dir / "stripe" / "airbyte_list_customers.json").read_text()))
    magento = first_record(json.loads((fixtures_dir / "magento" / "adobedocs_customers_search.json").read_text()))

    assert {name: classify_field_name(name) for name in ("email", "name", "address", "description")} == {
        "email": "email",
        "name": "name",
        "address": "address",
        "description": "free_text",
    }
    assert set(stripe) >= {"email", "name", "address", "description"}
    assert detect_value_class(stripe["email"]) == "email"
    assert {name: classify_field_name(name) for name in ("email", "firstname", "lastname", "dob", "addresses")} == {
        "email": "email",
        "firstname": "name",
        "lastname": "name",
        "dob": "date_of_birth",
        "addresses": "address",
    }
    assert set(magento) >= {"email", "firstname", "lastname", "dob", "addresses"}
    assert detect_value_class(magento["email"]) == "email"
