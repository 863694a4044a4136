"""tap-stripe parses real public Stripe payloads into the expected whitelisted records."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest
import responses

from taps.stripe import TapStripe
from tests.singer_run import records_of, run_tap, schema_of

API = "http://stripe.test"
CONFIG = {"api_key": "sk_test_fixture", "api_url": API}


def envelope(url: str, objects: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    return {"object": "list", "url": url, "has_more": False, "data": objects}


def sync_with(pages: dict[str, dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        for path, body in pages.items():
            mock.add(responses.GET, f"{API}{path}", json=body)
        return run_tap(TapStripe, CONFIG)


@pytest.fixture
def stripe_fixtures(fixtures_dir: Path) -> dict[str, t.Any]:
    folder = fixtures_dir / "stripe"
    return {
        "charges": json.loads((folder / "airbyte_list_charges.json").read_text()),
        "customers": json.loads((folder / "airbyte_list_customers.json").read_text()),
        "openapi": json.loads((folder / "openapi_fixtures3_marketing_subset.json").read_text())["resources"],
    }


def test_list_payloads_parse(stripe_fixtures: dict[str, t.Any]) -> None:
    messages = sync_with(
        {
            "/v1/charges": stripe_fixtures["charges"],
            "/v1/customers": stripe_fixtures["customers"],
            "/v1/refunds": envelope("/v1/refunds", []),
        }
    )

    assert records_of(messages, "charges") == [
        {
            "id": "ch_1NirD82eZvKYlo2CIvbtLWuY",
            "created": "2023-08-25T05:45:18+00:00",
            "amount": 2000,
            "amount_captured": 2000,
            "amount_refunded": 0,
            "currency": "usd",
            "status": "succeeded",
            "paid": True,
            "captured": True,
            "disputed": False,
            "livemode": False,
            "payment_intent": None,
            "customer": None,
            "description": "My First Test Charge",
        }
    ]
    assert records_of(messages, "customers") == [
        {
            "id": "cus_NffrFeUfNV2Hib",
            "created": "2023-04-07T18:59:53+00:00",
            "currency": None,
            "balance": 0,
            "delinquent": False,
            "livemode": False,
            "email": "jennyrosen@example.com",
            "name": "Jenny Rosen",
            "description": None,
            "address_line1": None,
            "address_line2": None,
            "address_city": None,
            "address_postal_code": None,
            "address_country": None,
        }
    ]


def test_openapi_objects_parse(stripe_fixtures: dict[str, t.Any]) -> None:
    resources = stripe_fixtures["openapi"]
    messages = sync_with(
        {
            "/v1/charges": envelope("/v1/charges", [resources["charge"]]),
            "/v1/customers": envelope("/v1/customers", [resources["customer"]]),
            "/v1/refunds": envelope("/v1/refunds", [resources["refund"]]),
        }
    )

    charge = records_of(messages, "charges")[0]
    assert charge["billing_name"] == "Jenny Rosen"
    assert charge["card_fingerprint"] == "AOB934RVNwzk6xtn"
    assert charge["card_brand"] == "visa"
    assert charge["card_country"] == "US"
    assert charge["payment_method"] == "card_1PgaftB7WZ01zgkWm3waTcFp"
    assert charge["created"] == "2009-02-13T23:31:30+00:00"
    assert "receipt_url" not in charge
    assert "refunds" not in charge

    refund = records_of(messages, "refunds")[0]
    assert refund == {
        "id": "re_1Pgc72B7WZ01zgkWqPvrRrPE",
        "created": "2009-02-13T23:31:30+00:00",
        "amount": 100,
        "currency": "usd",
        "charge": "ch_1PgafuB7WZ01zgkWXYmPNZs8",
        "payment_intent": None,
        "reason": None,
        "status": "succeeded",
        "customer": None,
    }

    customer = records_of(messages, "customers")[0]
    assert customer["preferred_locales"] == []
    assert "address_line1" in customer
    assert customer["address_line1"] is None


def test_every_field_has_pii_class(stripe_fixtures: dict[str, t.Any]) -> None:
    messages = sync_with(
        {
            "/v1/charges": stripe_fixtures["charges"],
            "/v1/customers": stripe_fixtures["customers"],
            "/v1/refunds": envelope("/v1/refunds", []),
        }
    )

    for stream in ("charges", "customers", "refunds"):
        properties = schema_of(messages, stream)["properties"]
        assert properties, stream
        assert all(prop.get("x-pii") for prop in properties.values()), stream

    charges = schema_of(messages, "charges")["properties"]
    assert charges["billing_email"]["x-pii"] == "email"
    assert charges["billing_phone"]["x-pii"] == "phone"
    assert charges["billing_name"]["x-pii"] == "name"
    assert charges["billing_address_line1"]["x-pii"] == "address"
    assert charges["card_fingerprint"]["x-pii"] == "identifier"
    assert charges["description"]["x-pii"] == "free_text"
    assert schema_of(messages, "customers")["properties"]["ip_address"]["x-pii"] == "ip"


def test_requests_pin_stripe_version(stripe_fixtures: dict[str, t.Any]) -> None:
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{API}/v1/charges", json=stripe_fixtures["charges"])
        mock.add(responses.GET, f"{API}/v1/customers", json=envelope("/v1/customers", []))
        mock.add(responses.GET, f"{API}/v1/refunds", json=envelope("/v1/refunds", []))
        run_tap(TapStripe, CONFIG)
        request = mock.calls[0].request

    assert request.headers["Stripe-Version"] == "2026-08-26.dahlia"
    assert request.headers["Authorization"] == "Bearer sk_test_fixture"
    assert "limit=100" in request.url
